#!/bin/sh
# One word per line, lower-cased; everything that is not a letter separates words.
name=$(basename "$INPUT_FILE_PATH")
tr -cs 'A-Za-z' '\n' < "$INPUT_FILE_PATH" | tr 'A-Z' 'a-z' | sed '/^$/d' > "$TMP_OUTPUT_DIR/$name"
echo "split $name into $(wc -l < "$TMP_OUTPUT_DIR/$name") words"
