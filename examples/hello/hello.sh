#!/bin/sh
echo "$GREETING"
cat /app/built-by
