import { ValidationError } from '../errors';

/**
 * Splits a command string into words the way a POSIX shell would tokenise
 * it (quotes and backslashes), without expanding anything: the behaviour of
 * Python's `shlex.split`, which DjDockerManager's Docker SDK applied to
 * string commands. `sh -c 'echo hi; exit 3'` is three words; `$WHO` stays
 * literal for the container's shell to expand.
 *
 * A hand-written tokenizer because the npm shell parsers expand `${VAR}` or
 * turn `;` into operators, which would change what existing clients run.
 */
export function splitCommand(command: string, field = 'command'): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < command.length && '\\"$`\n'.includes(command[i + 1])) {
        i++;
        if (command[i] !== '\n') word += command[i];
      } else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= command.length) throw ValidationError.forField(field, 'ends with an unfinished escape (a lone backslash)');
      i++;
      if (command[i] !== '\n') word += command[i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw ValidationError.forField(field, `has an unclosed ${quote === "'" ? 'single' : 'double'} quote`);
  if (inWord) words.push(word);
  return words;
}
