#!/bin/bash
# Converts the input image to grayscale; the result lands in the output folder.
IMAGE_NAME=$(basename "$INPUT_FILE_PATH")
OUTPUT_IMAGE="$TMP_OUTPUT_DIR/$IMAGE_NAME"
echo "converting $INPUT_FILE_PATH to grayscale"
convert "$INPUT_FILE_PATH" -type Grayscale "$OUTPUT_IMAGE"
