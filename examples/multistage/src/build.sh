#!/bin/sh
echo "app version $1"
