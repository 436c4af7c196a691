import type { UrgencyEvent } from '../mqtt/payload-schemas.js';

const MARK: Record<UrgencyEvent['level'], string> = { high: '▲ HIGH  ', medium: '▲ MEDIUM', low: '▽ low   ' };

/**
 * One compact human line per flag event, for the terminal of `ser-edge run` (the demo):
 * time, channel, level, score, top emotion, call. Logs stay JSON on stderr.
 */
export function describeFlag(event: UrgencyEvent): string {
  const time = new Date(event.ts).toLocaleTimeString('en-GB', { hour12: false });
  const verb = event.kind === 'raise' ? 'raised' : 'cleared';
  const top = event.probabilities[event.emotion];
  return `${time}  ${event.channel}  ${MARK[event.level]}  score ${event.score.toFixed(2)}  ${event.emotion}${top !== undefined ? ` ${(top * 100).toFixed(0)}%` : ''}  ${verb}  call ${event.callId}  #${event.seq}`;
}
