# bash completion of ipcproof: commands, then each command's options (from its --help).
_ipcproof() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "stress validate bench repro describe replay list clean version help" -- "$cur"))
        return
    fi
    case $prev in
        --plugin|--plugin-src|--plugin-tsan|--json|--sarif|replay|repro)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --proto)
            COMPREPLY=($(compgen -W "$(ipcproof list 2>/dev/null | awk '!/^#/{print $1}')" -- "$cur"))
            return ;;
        --mode) COMPREPLY=($(compgen -W "process thread sched" -- "$cur")); return ;;
        --kind) COMPREPLY=($(compgen -W "channel lock" -- "$cur")); return ;;
        --strategy) COMPREPLY=($(compgen -W "pct random dfs" -- "$cur")); return ;;
        --fault) COMPREPLY=($(compgen -W "kill stop signals short-io" -- "$cur")); return ;;
        help) COMPREPLY=($(compgen -W "stress validate bench repro describe replay list clean version" -- "$cur")); return ;;
    esac
    if [[ $cur == -* ]]; then
        local opts
        opts=$(ipcproof "${COMP_WORDS[1]}" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
}
complete -F _ipcproof ipcproof
