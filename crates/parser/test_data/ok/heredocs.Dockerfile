FROM alpine
RUN <<EOF
echo "single $HOME"
EOF
COPY <<FILE1 <<FILE2 /dest/
first file
FILE1
second file
FILE2
RUN <<-EOT sh
	echo "tab-stripped"
	EOT
RUN <<"QUOTED" cat > /out
no $expansion here
QUOTED
RUN 3<<'FD' cat /proc/self/fd/3
fd three
FD
ADD --chmod=644 <<conf /etc/app.conf
key=value
conf
RUN <<ONE cat - && <<TWO cat -
one
ONE
two
TWO
