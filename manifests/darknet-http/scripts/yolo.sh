#!/bin/bash
# Detects objects in the posted image; stdout is the HTTP response body.
OUTPUT_FILE="$TMP_OUTPUT_DIR/image-result"
cd /opt/darknet || exit 1
./darknet detect cfg/yolo.cfg yolo.weights "$INPUT_FILE_PATH" -out "$OUTPUT_FILE" > "$OUTPUT_FILE.out"
cat "$OUTPUT_FILE.out"
