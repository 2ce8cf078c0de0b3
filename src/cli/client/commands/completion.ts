import { Command, Option } from 'commander';
import { localAction } from '../client-action';
import { print } from '../output';

/** Completions worked out when the user presses Tab: names asked of the server, quietly (no server, no names). */
const DYNAMIC: Record<string, string> = {
  apps: `berth get apps -o name 2>/dev/null | sed 's,^app/,,'`,
  runs: `berth get runs -o name 2>/dev/null | sed 's,^run/,,'`,
};

/** What each command's first arguments complete to: fixed words, or the names above. */
const ARGUMENTS: Record<string, string[][]> = {
  get: [['apps', 'runs']],
  describe: [['app', 'run']],
  delete: [['app'], ['@apps']],
  run: [['@apps']],
  logs: [['@runs']],
  cancel: [['@runs']],
  completion: [['bash', 'zsh']],
};

/** `berth completion bash|zsh`: a script for the shell's completion, made from the commands as they are defined. */
export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: eval "$(berth completion bash)", or add it to ~/.bashrc / ~/.zshrc')
    .addArgument(new Command().createArgument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action(localAction(([shell]) => print(shell === 'zsh' ? zshScript(program) : bashScript(program))));
}

interface CommandInfo {
  name: string;
  description: string;
  options: string[];
  subcommands: CommandInfo[];
}

function describe(command: Command): CommandInfo {
  return {
    name: command.name(),
    description: command.description().split(/[;:(]/)[0].trim(),
    options: command.options.filter((o: Option) => !o.hidden).flatMap((o: Option) => [o.long, o.short].filter((f): f is string => Boolean(f))),
    subcommands: command.commands.map(describe),
  };
}

/** The shell words one argument position completes to. */
function wordsFor(command: string, position: number, quote: (script: string) => string): string {
  const choice = ARGUMENTS[command]?.[position] ?? [];
  return choice.map((w) => (w.startsWith('@') ? quote(DYNAMIC[w.slice(1)]) : w)).join(' ');
}

function bashScript(program: Command): string {
  const root = describe(program);
  const cases = root.subcommands
    .map((c) => {
      if (c.subcommands.length) {
        const subs = c.subcommands.map((s) => `        ${s.name}) opts="${s.options.join(' ')}" ;;`).join('\n');
        return `    ${c.name})\n      if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "${c.subcommands.map((s) => s.name).join(' ')}" -- "$cur")); return; fi\n      case "$sub" in\n${subs}\n      esac ;;`;
      }
      const positional = [0, 1].map((p) => `      [ "$npos" -eq ${p} ] && args="${wordsFor(c.name, p, (s) => `$(${s})`)}"`).join('\n');
      return `    ${c.name})\n      opts="${c.options.join(' ')}"\n${positional} ;;`;
    })
    .join('\n');
  return `# berth completion for bash: eval "$(berth completion bash)"
_berth() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmd="" sub="" npos=0 opts="" args="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      -*) ;;
      *) if [ -z "$cmd" ]; then cmd="$w"; elif [ -z "$sub" ] && [ "$cmd" = config ]; then sub="$w"; else npos=$((npos + 1)); fi ;;
    esac
  done
  case "$prev" in
    -f|--filename|--token-file) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
    --app) COMPREPLY=($(compgen -W "$(${DYNAMIC.apps})" -- "$cur")); return ;;
    --phase) COMPREPLY=($(compgen -W "Pending Running Succeeded Failed Cancelled" -- "$cur")); return ;;
    -o|--output) COMPREPLY=($(compgen -W "wide yaml json name" -- "$cur")); return ;;
  esac
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "${root.subcommands.map((c) => c.name).join(' ')} ${root.options.join(' ')}" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -W "$args" -- "$cur")); fi
}
complete -F _berth berth`;
}

function zshScript(program: Command): string {
  const root = describe(program);
  const described = (list: CommandInfo[]) => list.map((c) => `'${c.name}:${c.description.replace(/'/g, '')}'`).join(' ');
  const cases = root.subcommands
    .map((c) => {
      if (c.subcommands.length) {
        const subs = c.subcommands.map((s) => `        ${s.name}) opts=(${s.options.join(' ')}) ;;`).join('\n');
        return `    ${c.name})\n      if (( npos == 0 )); then local -a subs; subs=(${described(c.subcommands)}); _describe 'config command' subs; return; fi\n      case $words[3] in\n${subs}\n      esac ;;`;
      }
      const positional = [0, 1].map((p) => `      (( npos == ${p} )) && args=(${wordsFor(c.name, p, (s) => `\${(f)"$(${s})"}`)})`).join('\n');
      return `    ${c.name})\n      opts=(${c.options.join(' ')})\n${positional} ;;`;
    })
    .join('\n');
  return `#compdef berth
# berth completion for zsh: eval "$(berth completion zsh)", or save it as _berth in a folder of $fpath
_berth() {
  local -a opts args
  local npos=0 i
  for ((i = 3; i < CURRENT; i++)); do
    [[ $words[i] == -* ]] || (( npos++ ))
  done
  case $words[CURRENT-1] in
    -f|--filename|--token-file) _files; return ;;
    --app) compadd -- \${(f)"$(${DYNAMIC.apps})"}; return ;;
    --phase) compadd Pending Running Succeeded Failed Cancelled; return ;;
    -o|--output) compadd wide yaml json name; return ;;
  esac
  if (( CURRENT == 2 )); then
    local -a commands; commands=(${described(root.subcommands)})
    _describe 'berth command' commands
    return
  fi
  case $words[2] in
${cases}
  esac
  if [[ $PREFIX == -* ]]; then compadd -- $opts; else compadd -- $args; fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _berth "$@"; else compdef _berth berth; fi`;
}
