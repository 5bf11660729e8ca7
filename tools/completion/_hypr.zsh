#compdef hypr
# zsh completion for hypr(1). `make install` makes _hypr from this file with
# hypr.bash in place of the line below: zsh runs bash's completion under
# bashcompinit, so that both shells complete the same words.
autoload -U +X bashcompinit && bashcompinit
# @HYPR_BASH@
# the first completion, which loaded this file (later ones go straight to
# _bash_complete, which the `complete` above has set for hypr); nothing
# when the file is sourced by hand
(( ${+compstate} )) && _bash_complete -o default -F _hypr_bash
