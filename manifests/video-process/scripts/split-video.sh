#!/bin/bash
# Splits the input video into one JPEG per second.
FILE_NAME=$(basename "$INPUT_FILE_PATH" | cut -f 1 -d '.')
echo "splitting $INPUT_FILE_PATH"
ffmpeg -loglevel info -nostats -i "$INPUT_FILE_PATH" -q:v 1 -r 1 "$TMP_OUTPUT_DIR/$FILE_NAME-%03d.jpg" < /dev/null
