FROM busybox
# BuildKit 0.13: `<<` then a blank is the shell's operator, not a heredoc.
RUN test $(( 1 << 21 )) -eq 2097152
# BuildKit 1.16+: `<< EOF` opens a heredoc; buildr agrees when the
# terminator follows.
RUN cat << EOF > /greeting
hello
EOF
RUN x=$(( 3 << 2 )) && cat <<DONE
$x
DONE
