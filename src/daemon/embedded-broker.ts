import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

/**
 * An MQTT broker inside the daemon (aedes), for a machine with no broker yet: the demo,
 * a bench, a gateway whose flags are read locally. It listens on 127.0.0.1 only, so it
 * never exposes an unauthenticated broker to the network. aedes speaks MQTT 3.1.1, not 5.
 */
export class EmbeddedBroker {
  private readonly deps: { port: number };
  private broker: Aedes | undefined;
  private server: Server | undefined;

  constructor(dependencies: { port: number }) {
    this.deps = dependencies;
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    this.broker = broker;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new Error(`embedded broker: port ${this.deps.port} on 127.0.0.1 is taken (another broker?); set mqtt.url to use it, or mqtt.embedded.port (0 picks a free port)`)
            : error,
        ),
      );
      server.listen(this.deps.port, '127.0.0.1', () => resolve());
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
