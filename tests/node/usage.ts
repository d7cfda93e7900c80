// A small TypeScript program against the declarations that gen-types.mjs generates from
// schemas/v1 (unchanged). `tsc --strict --noEmit -p tests/node` must accept it: the generated
// types can express beatspec documents, and (the @ts-expect-error lines) they reject wrong ones.

import type { DefinitionStrict } from "./types/definition.strict.js";
import type { DefinitionExtended } from "./types/definition.extended.js";
import type { MetaStrict } from "./types/meta.strict.js";
import type { Meta } from "./types/meta.js";
import type { DatetimeStrict } from "./types/datetime.strict.js";
import type { RruleStrict } from "./types/rrule.strict.js";
import type { Rrule } from "./types/rrule.js";
import type { Weekday } from "./types/weekday.js";
import type { CrontabStrict } from "./types/crontab.strict.js";
import type { Crontab } from "./types/crontab.js";
import type { Extensions } from "./types/extensions.js";
import type { EntryStrict } from "./types/entry.strict.js";
import type { Options } from "./types/options.js";

// A crontab as a writer emits it: all five fields, as strings.
const crontab: CrontabStrict = {
  __type__: "crontab",
  minute: "*/15",
  hour: "9-17",
  day_of_week: "mon-fri",
  day_of_month: "*",
  month_of_year: "*",
};

// The reader form also takes RedBeat's Python values: integers and non-empty integer arrays.
const legacyCrontab: Crontab = { __type__: "crontab", minute: 5, hour: [0, 12] };

// A canonical (writer) definition.
const definition: DefinitionStrict = {
  name: "reports.daily",
  task: "reports.tasks.build",
  args: [1, "two", null],
  kwargs: { region: "eu", dry_run: false },
  options: { queue: "reports", priority: 5, expires: 3600 },
  schedule: crontab,
  enabled: true,
};

// A datetime as a writer emits it, and a meta that carries it.
const lastRun: DatetimeStrict = {
  __type__: "datetime",
  year: 2024,
  month: 3,
  day: 31,
  hour: 2,
  minute: 30,
  second: 0,
  microsecond: 0,
  timezone: "Europe/Paris",
};
const meta: MetaStrict = { last_run_at: lastRun, total_run_count: 42 };
const neverRun: Meta = { last_run_at: null };

// An rrule with weekday objects (the first Monday and the last Friday of the month).
const firstMonday: Weekday = { __type__: "weekday", wkday: 0, n: 1 };
const lastFriday: Weekday = { __type__: "weekday", wkday: 4, n: -1 };
const rrule: RruleStrict = {
  __type__: "rrule",
  freq: 1,
  dtstart: 1704067200,
  dtstart_tz: 0,
  interval: 1,
  byweekday: [firstMonday, lastFriday],
  byhour: 9,
  byminute: [0],
  wkst: { __type__: "weekday", wkday: 0 },
  until: null,
  count: null,
};
// The reader form also accepts the frequency by name and a fixed-offset dtstart_tz.
const readerRrule: Rrule = { __type__: "rrule", freq: "MONTHLY", dtstart: 0, dtstart_tz: 60, byweekday: 3 };

// The extensions hash field, with a vendor extension member.
const extensions: Extensions = {
  timezone: "America/New_York",
  misfire: { policy: "run_once", grace: 300 },
  jitter: 2.5,
  delete_after_last_run: false,
  "x-acme-owner": "team-reports",
};

// A whole entry hash, writer form.
const entry: EntryStrict = {
  definition: { ...definition, schedule: rrule },
  meta,
  extensions,
};

// The extended profile admits solar schedules.
const solar: DefinitionExtended = {
  name: "lights",
  task: "home.lights_on",
  schedule: { __type__: "solar", event: "sunset", lat: 48.85, lon: 2.35 },
};

// Unknown task options are passed through by readers (OPT-4) ...
const passThrough: Options = { queue: "q", "x-custom": 1 };

// ... and the types reject what the schemas reject.
// @ts-expect-error: the writer form needs all five crontab fields
const partialCrontab: CrontabStrict = { __type__: "crontab", minute: "0" };
// @ts-expect-error: a crontab field is never a boolean
const boolCrontab: Crontab = { __type__: "crontab", minute: true };
// @ts-expect-error: no empty arrays (minItems 1)
const emptyHours: Crontab = { __type__: "crontab", hour: [] };
// @ts-expect-error: the writer form takes freq as an integer, not a name
const namedFreq: RruleStrict = { __type__: "rrule", freq: "DAILY", dtstart: 0 };
// @ts-expect-error: wrong schedule tag
const wrongTag: Weekday = { __type__: "weekdays", wkday: 0 };
// @ts-expect-error: fold is 0 or 1
const badFold: DatetimeStrict = { ...lastRun, fold: 2 };
// @ts-expect-error: reserved options such as task_id must not appear
const reserved: Options = { task_id: "abc" };
// @ts-expect-error: the misfire policy is an enumeration
const badPolicy: Extensions = { misfire: { policy: "sometimes" } };
// @ts-expect-error: the core profile has no solar schedule
const coreSolar: DefinitionStrict = { ...definition, schedule: { __type__: "solar", event: "sunset", lat: 0, lon: 0 } };

export const documents = [
  legacyCrontab, neverRun, readerRrule, entry, solar, passThrough,
  partialCrontab, boolCrontab, emptyHours, namedFreq, wrongTag, badFold, reserved, badPolicy, coreSolar,
];
