// Edits on their way to Python. Each gets a sequence number; Python applies an edit once
// (it remembers the last number applied per client) and reports that number back, so an
// edit sent twice (a resend after a lost message) is applied once.
import type { EditEvent, EditPayload, SentEvent } from "./types";

const RESEND_MS = 2000;
const MAX_BATCH = 100;

export class Outbox {
  readonly client = `c${Math.random().toString(36).slice(2, 12)}`;
  private seq = 0;
  private pending: SentEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private deliver: (payload: EditPayload) => void) {}

  push(event: EditEvent): void {
    this.pending.push({ ...event, seq: ++this.seq } as SentEvent);
    this.flush();
  }

  /** Python applied every edit up to ``seq``. */
  ack(seq: number): void {
    this.pending = this.pending.filter((e) => e.seq > seq);
    if (!this.pending.length && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Edits sent but not applied yet. */
  get busy(): boolean {
    return this.pending.length > 0;
  }

  private flush(): void {
    if (!this.pending.length) return;
    this.deliver({ client: this.client, events: this.pending.slice(0, MAX_BATCH), sent: Date.now() });
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), RESEND_MS);
  }
}
