#!/bin/bash
# Runs YOLO object detection on one frame; writes the labelled image and the
# detections as text.
OUTPUT_FILE="$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH" .jpg)"
cd /opt/darknet || exit 1
./darknet detect cfg/yolo.cfg yolo.weights "$INPUT_FILE_PATH" -out "$OUTPUT_FILE" > "$OUTPUT_FILE.out"
