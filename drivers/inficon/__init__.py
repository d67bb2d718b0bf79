"""INFICON quartz-crystal rate/thickness monitors (SQM-160, SQC-310) over a serial port."""
