/**
 * `npm run admin -- <verb> ...`: provisions the directory in the Redis at
 * `REDIS_URL`, or the Redis Cluster at `REDIS_CLUSTER_NODES` (under
 * `REDIS_KEY_PREFIX`), the one the gateways read. Running
 * gateways see a change at once through the directory's change notices, and
 * at the latest after `DIRECTORY_CACHE_TTL_MS`.
 *
 * Exit codes: 0 done, 1 the operation failed (configuration, Redis, unknown or
 * duplicate id), 2 the command line is wrong. Errors are one line on stderr.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError, loadConfig } from "../config.js";
import { FieldCipherError, fieldCipherOf } from "../encryption/field-cipher.js";
import { RedisIdempotencyStore } from "../idempotency/redis-idempotency-keeper.js";
import {
  closeConnection,
  connectTarget,
  describeRedisTarget,
  redisTargetOf,
  redisVariableOf,
  type RedisConnection,
} from "../store/redis-connection.js";
import { DirectoryUpgradeError, upgradeDirectoryLayout, type DirectoryUpgrade } from "../store/directory-layout.js";
import { directoryKeyPrefix, RedisDirectoryStore } from "../store/redis-directory-store.js";
import { readSeedFile, SeedError } from "../store/seed.js";
import { Provisioning, ProvisioningError, type Listing, type ListingKind } from "./provisioning.js";

const HELP = `Usage: npm run admin -- <command> [arguments]

Provisions the gateway directory in the Redis at REDIS_URL, or the Redis Cluster
at REDIS_CLUSTER_NODES (keys under REDIS_KEY_PREFIX).

Commands:
  import <seed.json>                          write a seed file (partner keys are stored hashed)
  create-partner <id> [--name NAME]           create a partner and print its API key once
  rotate-key <partner-id>                     issue a new API key (printed once); the old one stops working
  create-platform <id> [--webhook-url URL [--webhook-secret SECRET]]
                                              create a scheduling platform; a generated secret is printed once
  set-webhook <platform-id> <url> [--secret SECRET]
                                              set a platform's webhook; a generated secret is printed once
  create-account <id> <platform-id>           create an account on a platform
  create-bot <id> <partner-id> <account-id>   create a bot for a partner, serving an account
  list [partners|platforms|accounts|bots]     show what exists (never a key or secret)
  reencrypt                                   encrypt webhook secrets and stored booking answers with
                                              GATEWAY_ENCRYPTION_KEY (after setting or rotating it)
  upgrade-directory                           move a directory written by an earlier build (keys under
                                              <prefix>dir:) to the current layout; one Redis only
  help                                        show this text
`;

/** A command line that cannot be run as given. */
class UsageError extends Error {
  override name = "UsageError";
}

interface Output {
  out(line: string): void;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

function parse(args: string[], positionals: string[], options: Options = {}): { values: Record<string, string | undefined>; rest: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (parsed.positionals.length !== positionals.length) {
    throw new UsageError(`expected ${positionals.length === 0 ? "no arguments" : positionals.map((p) => `<${p}>`).join(" ")}`);
  }
  return { values: parsed.values as Record<string, string | undefined>, rest: parsed.positionals };
}

const LIST_KINDS: readonly ListingKind[] = ["partners", "platforms", "accounts", "bots"];

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => "  " + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "));
}

function printListing(o: Output, listing: Listing, kinds: readonly ListingKind[]): void {
  for (const kind of kinds) {
    o.out(`${kind} (${listing[kind].length})`);
    const rows: string[][] = {
      partners: () => [["id", "name", "key sha256"], ...listing.partners.map((p) => [p.id, p.name, `${p.keyHashPrefix}…`])],
      platforms: () => [
        ["id", "webhook", "secret"],
        ...listing.platforms.map((p) => [p.id, p.webhookUrl ?? "(none)", p.hasSecret ? "set" : "-"]),
      ],
      accounts: () => [["id", "platform"], ...listing.accounts.map((a) => [a.id, a.platformId])],
      bots: () => [["id", "partner", "account"], ...listing.bots.map((b) => [b.id, b.partnerId, b.accountId])],
    }[kind]();
    if (rows.length > 1) for (const line of table(rows)) o.out(line);
  }
}

function showSecretOnce(o: Output, what: string, secret: string): void {
  o.out(`${what} (shown once, store it now):`);
  o.out(`  ${secret}`);
}

/** What an action works on: the directory's operations, the Redis stores for re-encryption, the layout upgrade. */
interface Stores {
  readonly provisioning: Provisioning;
  readonly directory: RedisDirectoryStore;
  readonly idempotency: RedisIdempotencyStore;
  readonly encrypting: boolean;
  upgradeLayout(): Promise<DirectoryUpgrade>;
}

function printUpgrade(o: Output, u: DirectoryUpgrade): void {
  const moved = [...u.moved.values()].reduce((a, b) => a + b, 0);
  if (moved === 0 && u.merged === 0 && u.kept.length === 0 && u.changed.length === 0) {
    o.out(`nothing to upgrade: no directory keys under ${u.from}`);
  } else {
    const kinds = [...u.moved].map(([kind, n]) => `${kind} ${n}`).join(", ");
    o.out(`moved ${moved} keys from ${u.from} to ${u.to}${moved > 0 ? ` (${kinds})` : ""}`);
  }
  if (u.resealed > 0) o.out(`re-encrypted ${u.resealed} webhook secrets for their new keys`);
  if (u.merged > 0) o.out(`merged ${u.merged} index sets into the ones the current layout already had`);
  if (u.ignored > 0) o.out(`left ${u.ignored} keys under ${u.from} that are not directory keys`);
  if (u.kept.length > 0) {
    o.out(`kept ${u.kept.length} keys under ${u.from}: the current layout already has a key of the same name`);
    for (const key of u.kept) o.out(`  ${key}`);
  }
  if (u.changed.length > 0) {
    o.out(`kept ${u.changed.length} platforms under ${u.from}: their webhook secret changed while upgrading`);
    for (const key of u.changed) o.out(`  ${key}`);
  }
}

type Action = (stores: Stores, o: Output) => Promise<void>;

/** Checks a command line and returns what it does, before any connection is made. */
function command(verb: string, args: string[]): Action {
  switch (verb) {
    case "import": {
      const [file] = parse(args, ["seed.json"]).rest;
      return async ({ provisioning }, o) => {
        const seed = await readSeedFile(file!);
        await provisioning.importSeed(seed);
        o.out(
          `imported ${seed.partners.length} partners, ${seed.platforms.length} platforms, ${seed.accounts.length} accounts, ${seed.bots.length} bots`,
        );
      };
    }
    case "create-partner": {
      const { values, rest } = parse(args, ["id"], { name: { type: "string" } });
      return async ({ provisioning }, o) => {
        const { partner, apiKey } = await provisioning.createPartner(rest[0]!, values.name ?? "");
        o.out(`created partner ${partner.id}`);
        showSecretOnce(o, "API key", apiKey);
      };
    }
    case "rotate-key": {
      const { rest } = parse(args, ["partner-id"]);
      return async ({ provisioning }, o) => {
        const { partner, apiKey } = await provisioning.rotatePartnerKey(rest[0]!);
        o.out(`new key for partner ${partner.id}; the previous key no longer works`);
        showSecretOnce(o, "API key", apiKey);
      };
    }
    case "create-platform": {
      const { values, rest } = parse(args, ["id"], { "webhook-url": { type: "string" }, "webhook-secret": { type: "string" } });
      return async ({ provisioning }, o) => {
        const { generatedSecret } = await provisioning.createPlatform(rest[0]!, {
          url: values["webhook-url"],
          secret: values["webhook-secret"],
        });
        o.out(`created platform ${rest[0]}${values["webhook-url"] === undefined ? " (no webhook configured)" : ""}`);
        if (generatedSecret !== undefined) showSecretOnce(o, "webhook secret", generatedSecret);
      };
    }
    case "set-webhook": {
      const { values, rest } = parse(args, ["platform-id", "url"], { secret: { type: "string" } });
      return async ({ provisioning }, o) => {
        const { generatedSecret } = await provisioning.setWebhook(rest[0]!, rest[1]!, values.secret);
        o.out(`webhook of platform ${rest[0]} set to ${rest[1]}`);
        if (generatedSecret !== undefined) showSecretOnce(o, "webhook secret", generatedSecret);
      };
    }
    case "create-account": {
      const { rest } = parse(args, ["id", "platform-id"]);
      return async ({ provisioning }, o) => {
        await provisioning.createAccount(rest[0]!, rest[1]!);
        o.out(`created account ${rest[0]} on platform ${rest[1]}`);
      };
    }
    case "create-bot": {
      const { rest } = parse(args, ["id", "partner-id", "account-id"]);
      return async ({ provisioning }, o) => {
        await provisioning.createBot(rest[0]!, rest[1]!, rest[2]!);
        o.out(`created bot ${rest[0]} for partner ${rest[1]}, account ${rest[2]}`);
      };
    }
    case "list": {
      if (args.length > 1) throw new UsageError("expected at most one of partners, platforms, accounts, bots");
      const kind = args[0];
      if (kind !== undefined && !(LIST_KINDS as readonly string[]).includes(kind)) {
        throw new UsageError(`cannot list ${JSON.stringify(kind)}: expected one of ${LIST_KINDS.join(", ")}`);
      }
      return async ({ provisioning }, o) => printListing(o, await provisioning.list(), kind === undefined ? LIST_KINDS : [kind as ListingKind]);
    }
    case "reencrypt": {
      parse(args, []);
      return async ({ directory, idempotency, encrypting }, o) => {
        if (!encrypting) throw new ProvisioningError("GATEWAY_ENCRYPTION_KEY is not set: there is no key to encrypt with");
        const secrets = await directory.reencryptSecrets();
        const records = await idempotency.reencrypt();
        o.out(`re-encrypted ${secrets.rewritten} webhook secrets and ${records.rewritten} of ${records.records} idempotency records with the current key`);
        if (secrets.skipped + records.skipped > 0) {
          o.out(`skipped ${secrets.skipped} webhook secrets and ${records.skipped} idempotency records that no configured key decrypts`);
          throw new ProvisioningError(
            `${secrets.skipped + records.skipped} values are encrypted with a key that is neither GATEWAY_ENCRYPTION_KEY nor in ` +
              "GATEWAY_ENCRYPTION_PREVIOUS_KEYS (or were altered), and were left as they are: add the key that sealed them to " +
              "GATEWAY_ENCRYPTION_PREVIOUS_KEYS and run reencrypt again",
          );
        }
      };
    }
    case "upgrade-directory": {
      parse(args, []);
      return async ({ upgradeLayout }, o) => {
        const upgrade = await upgradeLayout();
        printUpgrade(o, upgrade);
        if (upgrade.changed.length > 0) {
          throw new ProvisioningError(`${upgrade.changed.length} platforms changed while upgrading and were not moved: run upgrade-directory again`);
        }
        if (upgrade.kept.length > 0) {
          throw new ProvisioningError(
            `${upgrade.kept.length} keys were not moved because the current layout already has them: compare each with its ` +
              `namesake under ${upgrade.to}, delete the one to drop (redis-cli DEL), and run upgrade-directory again`,
          );
        }
      };
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(verb)} (npm run admin -- help lists them)`);
  }
}

async function main(argv: string[]): Promise<number> {
  const o: Output = { out: (line) => process.stdout.write(line + "\n") };
  const fail = (code: number, message: string): number => {
    process.stderr.write(`admin: ${message}\n`);
    return code;
  };
  const [verb, ...args] = argv;
  if (verb === undefined) {
    process.stderr.write(HELP);
    return 2;
  }
  if (verb === "help" || verb === "--help" || verb === "-h") {
    process.stdout.write(HELP);
    return 0;
  }
  let action: Action;
  try {
    action = command(verb, args);
  } catch (e) {
    return fail(2, e instanceof UsageError && e.message.startsWith("unknown command") ? e.message : `${verb}: ${(e as Error).message}`);
  }

  let redis: RedisConnection | undefined;
  try {
    const config = loadConfig(process.env);
    const target = redisTargetOf(config);
    if (target === undefined) {
      return fail(
        1,
        "REDIS_URL is not set, nor REDIS_CLUSTER_NODES: the admin command writes to the Redis the gateways read " +
          "(e.g. REDIS_URL=redis://127.0.0.1:6379, or REDIS_CLUSTER_NODES=10.0.0.1:6379,10.0.0.2:6379)",
      );
    }
    try {
      redis = await connectTarget(target, { commandTimeoutMs: 5000 });
    } catch (e) {
      // A URL names its variable by its form; a list of nodes is named outright.
      const variable = target.kind === "cluster" ? `${redisVariableOf(target)}: ` : "";
      return fail(1, `${variable}cannot reach ${describeRedisTarget(target)}: ${(e as Error).message}`);
    }
    const cipher = fieldCipherOf(config.encryption);
    const directory = new RedisDirectoryStore(redis, directoryKeyPrefix(config.redisKeyPrefix), cipher);
    const idempotency = new RedisIdempotencyStore(redis, config.redisKeyPrefix, cipher);
    const connection = redis;
    await action(
      {
        provisioning: new Provisioning(directory),
        directory,
        idempotency,
        encrypting: cipher.enabled,
        upgradeLayout: () => upgradeDirectoryLayout(connection, config.redisKeyPrefix, cipher),
      },
      o,
    );
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) return fail(1, `configuration error: ${e.message}`);
    if (e instanceof ProvisioningError || e instanceof SeedError || e instanceof FieldCipherError || e instanceof DirectoryUpgradeError) {
      return fail(1, `${verb}: ${e.message}`);
    }
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT" || err.code === "EACCES" || err.code === "EISDIR") return fail(1, `${verb}: ${err.message}`);
    return fail(1, `${verb} failed: ${err.message ?? String(e)}`);
  } finally {
    if (redis !== undefined) await closeConnection(redis);
  }
}

// Exits explicitly: ioredis may keep a timer for a connection that never
// opened, and the command is done once main settles.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`admin: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
