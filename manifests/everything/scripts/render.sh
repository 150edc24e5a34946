#!/bin/sh
# render the input file.
echo "render $INPUT_FILE_PATH"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
