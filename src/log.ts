/**
 * What the gateway's components log through: the few pino methods they use,
 * so a component takes the server's logger (fastify's is pino) without
 * depending on fastify, and a test can hand it a recorder. Messages follow
 * the server's rule: never a partner key, a webhook secret or a customer's
 * details.
 */
export interface Log {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Logs nothing: for components built without a server around them. */
export const silentLog: Log = {
  info() {},
  warn() {},
  error() {},
};
