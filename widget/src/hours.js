// Business hours (`/widget.json` → `hours`): whether the chat is open at
// a moment, in the hours' own time zone. `week` holds, Monday first, each
// day's `[start, end)` minute ranges (0–1440). No hours: always open. A
// time zone this browser does not know counts as always open (and says
// so once on the console) rather than turning customers away.

const WEEKDAYS = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };
const formats = new Map();

function formatFor(timeZone) {
  if (!formats.has(timeZone)) {
    let format = null;
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone,
        weekday: 'short',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      });
    } catch {
      console.warn(`flexbridge: unknown time zone ${timeZone}; the business hours are ignored`);
    }
    formats.set(timeZone, format);
  }
  return formats.get(timeZone);
}

/** The weekday (0 = Monday) and minute of the day of `date` in `timeZone`, or null. */
export function localTime(date, timeZone) {
  const format = formatFor(timeZone);
  if (!format) return null;
  const parts = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, p.value]));
  const day = WEEKDAYS[parts.weekday];
  const minute = (Number(parts.hour) % 24) * 60 + Number(parts.minute);
  if (day === undefined || Number.isNaN(minute)) return null;
  return { day, minute };
}

/** Whether the chat is open at `date` (default: now). */
export function isOpen(hours, date = new Date()) {
  if (!hours || !Array.isArray(hours.week)) return true;
  const local = localTime(date, hours.timeZone || 'UTC');
  if (!local) return true;
  const ranges = hours.week[local.day] ?? [];
  return ranges.some(([start, end]) => local.minute >= start && local.minute < end);
}
