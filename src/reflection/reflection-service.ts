/**
 * gRPC server reflection (`grpc.reflection.v1` and the older `v1alpha`, which
 * many tools still ask first): tools such as `buf curl`, grpcurl, grpcui and
 * Postman learn the gateway's services and messages from the gateway itself,
 * with no copy of the `.proto` files.
 *
 * Answers follow the protocol as grpc-go implements it: each request gets one
 * response echoing it; a file comes with the files it imports, and a file
 * already sent on the stream is not sent again; a name that is not known gets
 * an `error_response` with NOT_FOUND and the stream goes on. It needs no
 * authentication: the schema is public (it is in the API documentation).
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ServerReflection as ServerReflectionV1,
  ServerReflectionResponseSchema as ResponseV1Schema,
  type ServerReflectionRequest as RequestV1,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionResponseSchema as ResponseV1AlphaSchema,
  type ServerReflectionRequest as RequestV1Alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { DescFile } from "@bufbuild/protobuf";
import { DescriptorIndex } from "./descriptor-index.js";

/** The services reflection itself adds, so that they list themselves. */
export const REFLECTION_SERVICES = [ServerReflectionV1, ServerReflectionV1Alpha];

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** The `message_response` of an answer; the same shape in v1 and v1alpha. */
type Answer = { messageResponse: Exclude<MessageInitShape<typeof ResponseV1Schema>, { $typeName: string }>["messageResponse"] };

export function registerReflection(router: ConnectRouter, index: DescriptorIndex): void {
  router.service(ServerReflectionV1, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) {
        yield create(ResponseV1Schema, { validHost: req.host, originalRequest: req, ...answer(index, req, sent) });
      }
    },
  });
  router.service(ServerReflectionV1Alpha, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) {
        // v1alpha has the same messages under another package.
        const init = answer(index, req as unknown as RequestV1, sent) as MessageInitShape<typeof ResponseV1AlphaSchema>;
        yield create(ResponseV1AlphaSchema, { ...init, validHost: req.host, originalRequest: req as RequestV1Alpha });
      }
    },
  });
}

function answer(index: DescriptorIndex, req: RequestV1, sent: Set<string>): Answer {
  const request = req.messageRequest;
  const files = (file: DescFile | undefined, what: string): Answer =>
    file === undefined
      ? { messageResponse: { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } } }
      : { messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(file, sent) } } };
  switch (request.case) {
    case "fileByFilename":
      return files(index.fileByName(request.value), `file ${JSON.stringify(request.value)}`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(request.value), `symbol ${JSON.stringify(request.value)}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = request.value;
      return files(index.fileContainingExtension(containingType, extensionNumber), `extension ${extensionNumber} of ${JSON.stringify(containingType)}`);
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(request.value);
      if (numbers === undefined) {
        return { messageResponse: { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `type ${JSON.stringify(request.value)} not found` } } };
      }
      return { messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: request.value.replace(/^\./, ""), extensionNumber: numbers } } };
    }
    case "listServices":
      return { messageResponse: { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } } };
    default:
      return { messageResponse: { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "the request names no reflection request" } } };
  }
}
