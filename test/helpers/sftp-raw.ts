/**
 * An SFTP client that writes protocol packets by hand over an ssh2 `sftp` subsystem channel, so
 * a test can send what well-behaved clients never do: many READs at once, READs after CLOSE,
 * and none of the answers read until it chooses to.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';

/** SFTP packet types this client sends or reads (draft-ietf-secsh-filexfer-02). */
const FXP = { INIT: 1, OPEN: 3, CLOSE: 4, READ: 5, VERSION: 2, STATUS: 101, HANDLE: 102, DATA: 103 } as const;

/** One answer: a STATUS (code, message), a HANDLE or a DATA packet. */
export type Reply =
  | { type: 'status'; id: number; code: number; message: string }
  | { type: 'handle'; id: number; handle: Buffer }
  | { type: 'data'; id: number; length: number };

const str = (value: Buffer | string): Buffer => {
  const bytes = Buffer.from(value);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
};
const u32 = (value: number): Buffer => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
};
const packet = (type: number, ...fields: Buffer[]): Buffer => {
  const body = Buffer.concat([Buffer.from([type]), ...fields]);
  return Buffer.concat([u32(body.length), body]);
};

/** A raw SFTP session; `replies` collects every answer as it is read. */
export class RawSftp {
  readonly replies: Reply[] = [];
  readonly #client: ssh2.Client;
  readonly #channel: ClientChannel;
  #input = Buffer.alloc(0);
  #nextId = 1;
  #waiters: (() => void)[] = [];

  private constructor(client: ssh2.Client, channel: ClientChannel) {
    this.#client = client;
    this.#channel = channel;
    channel.on('data', (chunk: Buffer) => this.#take(chunk));
  }

  /** Connects as `username` with the private key in `keyFile` and opens the sftp subsystem. */
  static async connect(port: number, username: string, keyFile: string): Promise<RawSftp> {
    const client = new ssh2.Client();
    client.connect({ host: '127.0.0.1', port, username, privateKey: await readFile(keyFile), readyTimeout: 10_000 });
    await once(client, 'ready');
    const channel = await new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (error, stream) => (error ? reject(error) : resolve(stream))));
    const session = new RawSftp(client, channel);
    channel.write(packet(FXP.INIT, u32(3)));
    await session.until(() => session.#version);
    return session;
  }

  #version = false;

  #take(chunk: Buffer): void {
    this.#input = Buffer.concat([this.#input, chunk]);
    while (this.#input.length >= 4 && this.#input.length >= 4 + this.#input.readUInt32BE(0)) {
      const body = this.#input.subarray(4, 4 + this.#input.readUInt32BE(0));
      this.#input = this.#input.subarray(4 + body.length);
      const type = body[0]!;
      const id = body.readUInt32BE(1);
      if (type === FXP.VERSION) this.#version = true;
      else if (type === FXP.STATUS) this.replies.push({ type: 'status', id, code: body.readUInt32BE(5), message: body.subarray(13, 13 + body.readUInt32BE(9)).toString() });
      else if (type === FXP.HANDLE) this.replies.push({ type: 'handle', id, handle: Buffer.from(body.subarray(9, 9 + body.readUInt32BE(5))) });
      else if (type === FXP.DATA) this.replies.push({ type: 'data', id, length: body.readUInt32BE(5) });
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves once `condition` holds after some answer is read; rejects after `timeoutMs`. */
  async until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`no such answer within ${timeoutMs} ms (${this.replies.length} answers read)`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** The answer to request `id`, once read. */
  async reply(id: number): Promise<Reply> {
    await this.until(() => this.replies.some((r) => r.id === id));
    return this.replies.find((r) => r.id === id)!;
  }

  /** Sends OPEN for reading; returns the request id. */
  open(path: string): number {
    const id = this.#nextId++;
    this.#channel.write(packet(FXP.OPEN, u32(id), str(path), u32(1), u32(0)));
    return id;
  }

  /** Opens `path` for reading and returns its handle, or throws with the status. */
  async openHandle(path: string): Promise<Buffer> {
    const answer = await this.reply(this.open(path));
    if (answer.type !== 'handle') throw new Error(`open ${path}: ${JSON.stringify(answer)}`);
    return answer.handle;
  }

  /** Sends READ; returns the request id. */
  read(handle: Buffer, offset: number, length: number): number {
    const id = this.#nextId++;
    const at = Buffer.alloc(8);
    at.writeBigUInt64BE(BigInt(offset));
    this.#channel.write(packet(FXP.READ, u32(id), str(handle), at, u32(length)));
    return id;
  }

  /** Sends CLOSE; returns the request id. */
  close(handle: Buffer): number {
    const id = this.#nextId++;
    this.#channel.write(packet(FXP.CLOSE, u32(id), str(handle)));
    return id;
  }

  /** Stops reading answers: once ssh2's buffer is full, the server's window is not opened again. */
  pause(): void {
    this.#channel.pause();
  }

  /** Reads answers again. */
  resume(): void {
    this.#channel.resume();
  }

  /** Ends the connection. */
  end(): void {
    this.#client.end();
  }
}
