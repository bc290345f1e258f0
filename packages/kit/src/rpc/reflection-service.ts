import { createRegistry, type DescFile, type DescService, type Registry, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import type * as v1 from '@shellwego/contracts/grpc/reflection/v1/reflection_pb';
import type * as v1alpha from '@shellwego/contracts/grpc/reflection/v1alpha/reflection_pb';

// v1 and v1alpha are the same protocol under two package names; grpcurl and
// buf curl try v1 first and fall back to v1alpha.
type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

interface ReflectionAnswer {
  messageResponse:
    | { case: 'fileDescriptorResponse'; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: 'allExtensionNumbersResponse'; value: { baseTypeName: string; extensionNumber: number[] } }
    | { case: 'listServicesResponse'; value: { service: { name: string }[] } }
    | { case: 'errorResponse'; value: { errorCode: number; errorMessage: string } };
}

// gRPC status codes as the reflection protocol reports them in ErrorResponse.
const notFound = 5;
const unimplemented = 12;

/** Answers reflection requests from the descriptors embedded in gen/. */
export class ReflectionIndex {
  private readonly filesByName = new Map<string, DescFile>();
  private readonly registry: Registry;

  constructor(private readonly services: readonly DescService[]) {
    const visit = (file: DescFile) => {
      if (this.filesByName.has(file.name)) return;
      this.filesByName.set(file.name, file);
      file.dependencies.forEach(visit);
    };
    for (const service of services) visit(service.file);
    this.registry = createRegistry(...this.filesByName.values());
  }

  answer(request: Request): ReflectionAnswer {
    const query = request.messageRequest;
    switch (query.case) {
      case 'listServices':
        return {
          messageResponse: {
            case: 'listServicesResponse',
            value: { service: this.services.map((s) => ({ name: s.typeName })) },
          },
        };
      case 'fileByFilename':
        return this.files(this.filesByName.get(query.value), `file "${query.value}"`);
      case 'fileContainingSymbol':
        return this.files(this.fileOfSymbol(query.value), `symbol "${query.value}"`);
      case 'fileContainingExtension': {
        const extendee = this.registry.getMessage(query.value.containingType);
        const extension = extendee && this.registry.getExtensionFor(extendee, query.value.extensionNumber);
        return this.files(extension?.file, `extension ${query.value.extensionNumber} of "${query.value.containingType}"`);
      }
      case 'allExtensionNumbersOfType': {
        const extendee = this.registry.getMessage(query.value);
        if (!extendee) return error(notFound, `type "${query.value}" not found`);
        const numbers: number[] = [];
        for (const type of this.registry) {
          if (type.kind === 'extension' && type.extendee.typeName === extendee.typeName) numbers.push(type.number);
        }
        return {
          messageResponse: {
            case: 'allExtensionNumbersResponse',
            value: { baseTypeName: extendee.typeName, extensionNumber: numbers },
          },
        };
      }
      default:
        return error(unimplemented, 'unsupported reflection request');
    }
  }

  private fileOfSymbol(symbol: string): DescFile | undefined {
    const direct = this.registry.get(symbol);
    if (direct) return direct.file;
    // Methods and fields are named "<parent>.<member>".
    const dot = symbol.lastIndexOf('.');
    if (dot < 0) return undefined;
    const parent = this.registry.get(symbol.slice(0, dot));
    const member = symbol.slice(dot + 1);
    if (parent?.kind === 'service' && parent.methods.some((m) => m.name === member)) return parent.file;
    if (parent?.kind === 'message' && parent.fields.some((f) => f.name === member)) return parent.file;
    return undefined;
  }

  private files(file: DescFile | undefined, what: string): ReflectionAnswer {
    if (!file) return error(notFound, `${what} not found`);
    // The requested file first, then every transitive dependency, so a client
    // can build its descriptor pool from one answer.
    const ordered: DescFile[] = [];
    const seen = new Set<string>();
    const visit = (f: DescFile) => {
      if (seen.has(f.name)) return;
      seen.add(f.name);
      ordered.push(f);
      f.dependencies.forEach(visit);
    };
    visit(file);
    return {
      messageResponse: {
        case: 'fileDescriptorResponse',
        value: { fileDescriptorProto: ordered.map((f) => toBinary(FileDescriptorProtoSchema, f.proto)) },
      },
    };
  }
}

function error(errorCode: number, errorMessage: string): ReflectionAnswer {
  return { messageResponse: { case: 'errorResponse', value: { errorCode, errorMessage } } };
}

export function reflectionServiceV1(index: ReflectionIndex): ServiceImpl<typeof v1.ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, ...index.answer(request) };
      }
    },
  };
}

export function reflectionServiceV1alpha(index: ReflectionIndex): ServiceImpl<typeof v1alpha.ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, ...index.answer(request) };
      }
    },
  };
}
