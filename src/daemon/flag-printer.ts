import type { UrgencyEvent } from '../mqtt/payload-schemas.js';
import { scoreText } from '../urgency/score-text.js';

const MARK: Record<UrgencyEvent['level'], string> = { high: '▲ HIGH  ', medium: '▲ MEDIUM', low: '▽ low   ' };

/**
 * One compact human line per flag event, for the terminal of `ser-edge run` (the demo):
 * time, channel, level, score (cut to 3 decimals, so it never reads as the next level's
 * threshold), top emotion, call, and the event's seq.
 */
export function describeFlag(event: UrgencyEvent): string {
  const time = new Date(event.ts).toLocaleTimeString('en-GB', { hour12: false });
  const verb = event.kind === 'raise' ? 'raised' : 'cleared';
  const top = event.probabilities[event.emotion];
  return `${time}  ${event.channel}  ${MARK[event.level]}  score ${scoreText(event.score)}  ${event.emotion}${top !== undefined ? ` ${(top * 100).toFixed(0)}%` : ''}  ${verb}  call ${event.callId}  #${event.seq}`;
}
