import { Outbox, type OutboxDeps } from '../mqtt/outbox.js';

/**
 * The outbox, timing each event from the end of the audio window behind it to the
 * broker's PUBACK (the publisher acks an event in the outbox as its PUBACK arrives):
 * the `publish` latency of telemetry, the delay an operator actually sees.
 */
export class TimedOutbox extends Outbox {
  private readonly windowEnds = new Map<string, number>();
  private readonly onPublished: (ms: number) => void;

  constructor(dependencies: OutboxDeps & { onPublished: (ms: number) => void }) {
    super(dependencies);
    this.onPublished = dependencies.onPublished;
  }

  /** Times event `id`, whose window ended at `windowEndMs` (epoch ms). */
  watch(id: string, windowEndMs: number): void {
    // Bounded: during a long outage the oldest timings are given up, not the memory.
    if (this.windowEnds.size >= 10_000) this.windowEnds.delete(this.windowEnds.keys().next().value!);
    this.windowEnds.set(id, windowEndMs);
  }

  override reject(id: string, reason: string): Promise<void> {
    this.windowEnds.delete(id); // never published: no delay to report
    return super.reject(id, reason);
  }

  override ack(id: string): Promise<void> {
    const end = this.windowEnds.get(id);
    if (end !== undefined) {
      this.windowEnds.delete(id);
      this.onPublished(Date.now() - end);
    }
    return super.ack(id);
  }
}
