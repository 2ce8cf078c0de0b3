/**
 * A unified diff of two short texts (a spec as YAML), as `diff -u` prints
 * it: hunks of changed lines with three lines of context. Specs are small,
 * so a plain longest-common-subsequence table is fast enough.
 */
export function unifiedDiff(before: string, after: string, context = 3): string[] {
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = editScript(a, b);
  const out: string[] = [];
  let i = 0;
  while (i < ops.length) {
    if (ops[i].op === ' ') {
      i++;
      continue;
    }
    // A hunk: from `context` lines before this change to `context` lines after the last change within reach.
    const start = Math.max(0, i - context);
    let end = i;
    for (;;) {
      while (end < ops.length && ops[end].op !== ' ') end++;
      let next = end;
      while (next < ops.length && ops[next].op === ' ') next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else break;
    }
    end = Math.min(ops.length, end + context);
    const hunk = ops.slice(start, end);
    const aStart = ops[start].aLine;
    const bStart = ops[start].bLine;
    const aCount = hunk.filter((o) => o.op !== '+').length;
    const bCount = hunk.filter((o) => o.op !== '-').length;
    out.push(`@@ -${range(aStart, aCount)} +${range(bStart, bCount)} @@`);
    for (const o of hunk) out.push(o.op + o.text);
    i = end;
  }
  return out;
}

interface Op {
  op: ' ' | '-' | '+';
  text: string;
  /** 1-based line in `a` (or where it would be) and in `b`. */
  aLine: number;
  bLine: number;
}

function editScript(a: string[], b: string[]): Op[] {
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ op: ' ', text: a[i], aLine: i + 1, bLine: j + 1 });
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1][j] >= lcs[i][j + 1])) {
      // Removals first, as diff prints them.
      ops.push({ op: '-', text: a[i], aLine: i + 1, bLine: j + 1 });
      i++;
    } else {
      ops.push({ op: '+', text: b[j], aLine: i + 1, bLine: j + 1 });
      j++;
    }
  }
  return ops;
}

function range(start: number, count: number): string {
  // diff -u names the line before an empty range.
  if (count === 0) return `${start - 1},0`;
  return count === 1 ? `${start}` : `${start},${count}`;
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  return (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
}
