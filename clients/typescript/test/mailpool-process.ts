// Runs the real `mailpool` command for the tests: `mailpool demo` for a key, then
// `mailpool serve` on a port of its choosing (or a given one, to restart in place),
// all inside one temp folder. Readiness is the server's own stdout line, never a sleep.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

// dist/test/<this file> → the package root (clients/typescript).
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** MAILPOOL_BIN, else the repository's venv (`make install`). */
export const mailpoolBin = process.env.MAILPOOL_BIN
  ? resolve(process.env.MAILPOOL_BIN)
  : resolve(packageRoot, "..", "..", ".venv", "bin", "mailpool");

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** A temp folder with a SQLite database and a demo org, key and identity. */
export class Sandbox {
  private constructor(
    readonly dir: string,
    readonly apiKey: string,
    readonly identity: string,
  ) {}

  get databaseUrl(): string {
    return `sqlite:///${join(this.dir, "mailpool.db")}`;
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, MAILPOOL_DATA_DIR: this.dir, MAILPOOL_LOG_LEVEL: "WARNING" };
  }

  static async create(): Promise<Sandbox> {
    const dir = await mkdtemp(join(tmpdir(), "mailpool-ts-"));
    const probe = new Sandbox(dir, "", "");
    const out = await run(mailpoolBin, ["demo", "--db", probe.databaseUrl], probe.env);
    const key = /export MAILPOOL_KEY=(sk_live_[0-9a-f]+)/.exec(out)?.[1];
    const identity = /identity (\S+) \(/.exec(out)?.[1];
    if (!key || !identity) {
      throw new Error(`unexpected output of mailpool demo:\n${out}`);
    }
    return new Sandbox(dir, key, identity);
  }

  /** Starts `mailpool serve` on this database (port 0: a free one). */
  serve(port = 0): Promise<Server> {
    return Server.start(this, port);
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export class Server {
  private readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(sandbox: Sandbox, port: number): Promise<Server> {
    const args = ["serve", "--db", sandbox.databaseUrl, "--grpc-port", String(port)];
    // No HTTP shim port clash, no inbound listener, no dispatcher: the event log
    // then holds exactly the email.queued events the tests cause.
    args.push("--http-port", "0", "--inbound-port", "-1", "--no-dispatcher");
    const child = spawn(mailpoolBin, args, { env: sandbox.env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-8000);
    });
    const lines = createInterface({ input: child.stdout! });
    const listening = new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`mailpool serve did not start in ${START_TIMEOUT_MS} ms:\n${stderr}`));
      }, START_TIMEOUT_MS);
      lines.on("line", (line) => {
        const match = /^mailpool: gRPC listening on [^\s:]+:(\d+)$/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolvePort(Number(match[1]));
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`mailpool serve exited (${code ?? signal}) before listening:\n${stderr}`));
      });
      child.once("error", reject);
    });
    return new Server(child, await listening);
  }

  /** SIGTERM, then wait for the process to exit (SIGKILL after a bound). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return;
    }
    this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolveKill) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        resolveKill();
      }, STOP_TIMEOUT_MS);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
  }
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), START_TIMEOUT_MS);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin} (set MAILPOOL_BIN, or run make install): ${error.message}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) {
        resolveRun(out);
      } else {
        reject(new Error(`${bin} ${args.join(" ")} failed (${code}):\n${out}${err}`));
      }
    });
  });
}
