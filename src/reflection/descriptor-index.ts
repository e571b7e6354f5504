/**
 * The schema the gateway serves, indexed as server reflection asks for it:
 * a `.proto` file by name, the file that defines a symbol (message, enum,
 * service, method, field of an extension), extensions by the message they
 * extend. Built from protobuf-es's embedded descriptors (every generated file
 * carries its `FileDescriptorProto`), starting from the services a router
 * serves and following imports, so `google/protobuf/*.proto` and every other
 * dependency can be resolved by a client without a copy of `proto/`.
 */
import { toBinary, type DescExtension, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

export class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly extensions = new Map<string, DescExtension[]>();
  private readonly encoded = new Map<DescFile, Uint8Array>();
  /** Fully qualified names of the services served, in registration order. */
  readonly services: readonly string[];

  constructor(services: readonly DescService[]) {
    this.services = [...new Set(services.map((s) => s.typeName))];
    for (const service of services) this.addFile(service.file);
  }

  /** The file named `name` (`dialstack/partner/v1/booking.proto`). */
  fileByName(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  /** The file that defines a fully qualified symbol; a leading dot is allowed. */
  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }

  fileContainingExtension(extendee: string, number: number): DescFile | undefined {
    return this.extensions.get(extendee.replace(/^\./, ""))?.find((e) => e.number === number)?.file;
  }

  /** The extension numbers known for a message type; undefined when the type is unknown. */
  extensionNumbers(extendee: string): number[] | undefined {
    const name = extendee.replace(/^\./, "");
    if (!this.symbols.has(name)) return undefined;
    return (this.extensions.get(name) ?? []).map((e) => e.number);
  }

  /**
   * `file` and everything it imports, transitively, dependencies first, as
   * serialized `FileDescriptorProto`s; files in `skip` (already sent on the
   * stream) are left out and the ones returned are added to it.
   */
  withDependencies(file: DescFile, skip: Set<string>): Uint8Array[] {
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      const name = f.proto.name;
      if (skip.has(name)) return;
      skip.add(name);
      out.push(this.encode(f));
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return out;
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.encoded.set(file, bytes);
    }
    return bytes;
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const e of file.enums) this.symbols.set(e.typeName, file);
    for (const m of file.messages) this.addMessage(m, file);
    for (const x of file.extensions) this.addExtension(x, file);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
    for (const dep of file.dependencies) this.addFile(dep);
  }

  private addMessage(message: DescMessage, file: DescFile): void {
    this.symbols.set(message.typeName, file);
    for (const f of message.fields) this.symbols.set(`${message.typeName}.${f.name}`, file);
    for (const e of message.nestedEnums) this.symbols.set(e.typeName, file);
    for (const m of message.nestedMessages) this.addMessage(m, file);
    for (const x of message.nestedExtensions) this.addExtension(x, file);
  }

  private addExtension(extension: DescExtension, file: DescFile): void {
    this.symbols.set(extension.typeName, file);
    const list = this.extensions.get(extension.extendee.typeName) ?? [];
    list.push(extension);
    this.extensions.set(extension.extendee.typeName, list);
  }
}
