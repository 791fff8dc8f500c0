FROM alpine
COMPILE main.c
