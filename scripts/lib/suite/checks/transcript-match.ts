// The expected transcript (docs/transcript.md): the kernel log and the
// command's output against the test's transcript:, with its captures.
import type { CheckResult } from '../../verdict/model.ts';
import { TAINT_UNSIGNED } from '../../verdict/taint-flags.ts';
import { formatMismatches, matchTranscript, type Transcript } from '../../verdict/transcript.ts';
import type { CheckRoom, Judgement, TestEvidence } from './check.ts';

export function transcriptJudgement(e: TestEvidence, tr: { parsed: Transcript; file: string }, o: { firstLoad: boolean; loadsHere: boolean }): Judgement {
  // Taint E is set only by a kernel that checks signatures; one that does not never prints the signature line.
  const checksSignatures = e.taintAfter === undefined || (e.taintAfter & TAINT_UNSIGNED) !== 0;
  const m = matchTranscript(tr.parsed, { kernel: e.kernelLog, app: e.run?.result.stdout ?? '' }, { firstLoad: o.firstLoad, checksSignatures });
  const result: CheckResult = m.ok
    ? {
        name: 'transcript',
        ok: true,
        durationMs: 0,
        message: `${m.captures.pid ? `pid ${m.captures.pid}` : 'match'}${o.firstLoad || !o.loadsHere ? '' : ' (an out-of-tree module was loaded earlier this boot: first-load lines not expected)'}`,
      }
    : {
        name: 'transcript',
        ok: false,
        failure: 'transcript',
        durationMs: 0,
        message: 'output differs from the expected transcript',
        evidence: formatMismatches(m, tr.file),
        annotations: m.mismatches.map((mm) => ({ file: tr.file, line: mm.expected.lineNo, message: `${mm.section}: ${mm.why}: ${mm.expected.text}` })),
      };
  return { results: [result], captures: m.captures };
}

export const transcriptMatch: CheckRoom = {
  id: 'transcript',
  about: "the kernel log and the command's output match the test's transcript: (when it names one)",
  wanted: () => true,
  create: () => ({
    id: 'transcript',
    judge: (e, ctx) =>
      e.run && !e.run.result.timedOut && ctx.expect.transcript
        ? transcriptJudgement(e, ctx.expect.transcript, { firstLoad: ctx.firstLoad, loadsHere: ctx.expect.loadsHere })
        : undefined,
  }),
};
