#!/bin/sh
# publish the input file.
echo "publish $INPUT_FILE_PATH"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
