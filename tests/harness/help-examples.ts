/**
 * @module tests/harness/help-examples — every example line of `beetrace --help` and of each
 * command's --help, as argv lists, for the tests that run them as written
 * (tests/unit/cli/help-examples.test.ts: offline commands; tests/e2e/help-examples.test.ts:
 * the ones that trace or look at live processes).
 */
import { spawnSync } from "node:child_process";

export interface Example {
  /** the line as printed, comment removed */
  line: string;
  /** words after "beetrace", quotes removed as a shell would */
  args: string[];
}

/** Split a command line the way sh does for the quoting our examples use ('…', "…", words). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unbalanced quote in example: ${line}`);
      cur = (cur ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === " " || c === "\t") {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if (c === "#" && cur === undefined) {
      break; // a comment
    } else {
      cur = (cur ?? "") + c;
    }
  }
  if (cur !== undefined) words.push(cur);
  return words;
}

/** The example lines of one help text: lines of its Examples / EXAMPLES sections that start with "beetrace ". */
export function examplesIn(help: string): string[] {
  const out: string[] = [];
  let inExamples = false;
  for (const raw of help.split("\n")) {
    if (/^\S.*:$/.test(raw)) inExamples = /^examples:$/i.test(raw.trim());
    else if (inExamples && raw.trim().startsWith("beetrace ")) out.push(raw.trim());
  }
  return out;
}

/** Every example of the top-level help and of each command's help (deduplicated), from `cmd`. */
export function allExamples(cmd: [string, string[]]): Example[] {
  const help = (args: string[]) => {
    const r = spawnSync(cmd[0], [...cmd[1], ...args], { encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`beetrace ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  const top = help(["--help"]);
  const commands = [...top.matchAll(/^\s+\$ beetrace (\S+) --help$/gm)].map((m) => m[1]!);
  if (commands.length === 0) throw new Error(`no commands listed in --help:\n${top}`);
  const all = [...examplesIn(top), ...commands.flatMap((c) => examplesIn(help([c, "--help"])))];
  const byLine = new Map<string, Example>();
  for (const raw of all) {
    const words = shellWords(raw);
    const line = words.map((w) => (/^[\w./:=@,+-]+$/.test(w) ? w : `'${w}'`)).join(" ");
    byLine.set(line, { line, args: words.slice(1) });
  }
  return [...byLine.values()];
}

/** Examples that trace, need root, or look at a live process: run by the e2e test. */
export function isLive(e: Example): boolean {
  const c = e.args[0];
  return c === "attach" || c === "run" || c === "doctor" || (c === "inspect" && e.args.includes("--pid"));
}

/** Placeholders an example may use, and what a test puts in their place (nothing else changes). */
export function substitute(args: string[], map: Record<string, string>): string[] {
  return args.map((a) => {
    let out = a;
    for (const [k, v] of Object.entries(map)) out = out.split(k).join(v);
    return out;
  });
}
