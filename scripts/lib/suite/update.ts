// --update: a test's transcript written from what the run printed, as
// snapshot-testing tools do. [app] is the command's output verbatim (as
// appLines() shows it); [kernel] is the kernel log records of this test that
// the suite's modules printed, found by their origin (#29.16): one of the
// printk formats in their .ko (verdict/printk-origin.ts), or, for a module
// whose .ko is not at hand, the "name:" prefix (pr_fmt's usual
// KBUILD_MODNAME ": "); continuation lines included. The records it left
// out are returned, to be said. A number equal
// to the command's PID becomes {{pid}}, so the transcript proves that the
// kernel saw the very process that ran. The tool knows the PID of the shell
// that ran the line; Debian's dash forks even a single command, so the
// command is one of the next few PIDs of a quiet guest: the first of
// shell+1, shell, shell+2 … shell+4 that the output or the log shows.
import { createTwoFilesPatch } from 'diff';
import { type PrintkFormat, printedBy } from '../verdict/printk-origin.ts';
import { appLines } from '../verdict/transcript.ts';

/** The kernel log as records: a line with a printk timestamp, then its continuation lines. */
export function kernelRecords(log: string): string[][] {
  const out: string[][] = [];
  for (const raw of log.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const m = /^\[\s*\d+\.\d+\]\s?(.*)$/.exec(line);
    if (m) out.push([m[1]]);
    else if (line.trim() !== '' && out.length) out.at(-1)!.push(line.trimStart());
    else if (line.trim() !== '') out.push([line]);
  }
  return out;
}

const escapeBraces = (s: string): string => s.replace(/\{\{/g, '{{*}}{');

/** The command's PID: the first candidate after the shell's own that appears as a number in the text. */
export function commandPid(shellPid: string | undefined, text: string): string | undefined {
  if (!shellPid) return undefined;
  const p = Number(shellPid);
  const nums = new Set(text.match(/(?<![\w.])\d+(?![\w.])/g) ?? []);
  return [p + 1, p, p + 2, p + 3, p + 4].map(String).find((x) => nums.has(x));
}

export function transcriptFromRun(o: {
  app: string;
  kernelLog: string;
  modules: readonly string[];
  /** The printk formats of the modules' .ko files. */
  formats?: readonly PrintkFormat[];
  shellPid?: string;
  header: string;
}): { text: string; leftOut: string[] } {
  let pidSeen = false;
  const byFormat = printedBy(o.formats ?? []);
  const mine = (first: string): boolean => o.modules.some((m) => first.startsWith(`${m}:`) || first.startsWith(`${m} `)) || byFormat(first);
  const appText = appLines(o.app);
  const records = kernelRecords(o.kernelLog);
  const kernelText = records.filter((r) => mine(r[0]!)).flat();
  const leftOut = records.filter((r) => !mine(r[0]!)).map((r) => r[0]!);
  const pid = commandPid(o.shellPid, [...appText, ...kernelText].join('\n'));
  const withPid = (line: string): string => {
    const safe = escapeBraces(line);
    if (!pid) return safe;
    return safe.replace(new RegExp(`(?<![\\w.])${pid}(?![\\w.])`, 'g'), () => {
      if (pidSeen) return '{{pid}}';
      pidSeen = true;
      return '{{pid:int}}';
    });
  };
  const app = appText.map(withPid);
  const kernel = kernelText.map(withPid);
  return { text: [...o.header.split('\n').map((l) => `# ${l}`), '[kernel]', ...kernel, '[app]', ...app, ''].join('\n'), leftOut };
}

/** A unified diff of a transcript's old and new text ('' when they are equal). */
export function transcriptDiff(file: string, before: string | undefined, after: string): string {
  if (before === after) return '';
  return createTwoFilesPatch(before === undefined ? '/dev/null' : file, file, before ?? '', after, '', '', { context: 2 });
}

/** What --update left out of [kernel], said (#29.16): the records the modules did not print, by their formats or their name. */
export function leftOutLine(leftOut: readonly string[], without: readonly string[]): string {
  const how = without.length ? `; ${without.join(', ')} built in the guest: only their "name:" lines were taken` : '';
  if (!leftOut.length) return `update: [kernel] has every kernel line of the test${how}`;
  const shown = leftOut.slice(0, 5).map((l) => `  ${l}`);
  const more = leftOut.length > 5 ? [`  … and ${leftOut.length - 5} more`] : [];
  return [
    `update: left out ${leftOut.length} kernel line(s) that no module of the test printed (not its printk formats, not its name)${how}:`,
    ...shown,
    ...more,
  ].join('\n');
}
