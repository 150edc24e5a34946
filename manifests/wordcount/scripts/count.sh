#!/bin/sh
# The ten most frequent words, most frequent first.
name=$(basename "$INPUT_FILE_PATH")
sort "$INPUT_FILE_PATH" | uniq -c | sort -rn | head -n 10 > "$TMP_OUTPUT_DIR/$name"
echo "counted $(wc -l < "$INPUT_FILE_PATH") words of $name"
