#!/bin/sh
# Entrypoint of the icecast container (deploy/icecast.Dockerfile, used by deploy/compose.yaml).
#
# icecast-examples/icecast.xml stays the one source of truth for the Icecast configuration. It
# points Icecast's five URL-auth callbacks at http://127.0.0.1:8888/, where jars listens when
# both run on one machine; in compose jars is another container. So: the file given with
# `-c FILE` is copied to /tmp/icecast.xml with every http://127.0.0.1:8888/ replaced by
# $JARS_URL (default http://jars:8888/), and the command runs with the copy. Everything else
# (passwords, callback credentials, limits) is used as written: change the change-me-…
# values in the mounted file.
set -eu

jars_url=${JARS_URL:-http://jars:8888/}
case $jars_url in
    */) ;;
    *) jars_url=$jars_url/ ;;
esac
from='http://127.0.0.1:8888/'
out=/tmp/icecast.xml

rewrite() {
    if [ ! -r "$1" ]; then
        echo "icecast-entrypoint: cannot read $1 (mounted? readable by $(id -un)?)" >&2
        exit 1
    fi
    n=$(grep -c -F "value=\"$from" "$1" || true)
    if [ "$n" -eq 0 ]; then
        echo "icecast-entrypoint: warning: no callback URL starting with $from in $1; using its URLs unchanged" >&2
    fi
    if grep -q 'change-me-' "$1"; then
        echo "icecast-entrypoint: warning: $1 still has change-me-… passwords: change them before going live" >&2
    fi
    # Escape what sed's replacement would interpret: \ & and the delimiter |.
    esc=$(printf '%s\n' "$jars_url" | sed 's/[\\|&]/\\&/g')
    sed "s|http://127\.0\.0\.1:8888/|$esc|g" "$1" >"$out"
    echo "icecast-entrypoint: $n callback URL(s) of $1 now point at $jars_url ($out)" >&2
}

# Rewrite the argument of -c, keep every other argument.
prev=
for arg do
    shift
    if [ "$prev" = "-c" ]; then
        rewrite "$arg"
        arg=$out
    fi
    set -- "$@" "$arg"
    prev=$arg
done

exec "$@"
