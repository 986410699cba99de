#!/usr/bin/env bash
# Packs for a GPU-machine call (../shared/device/pack) and drops what GPU runs don't load, to fit the 64 MiB a call
# carries: the jar (its classes travel unpacked in classes.tar.gz) and the pipeline's parquet/Hadoop jars.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
../shared/device/pack > /dev/null
rm -f .device/lib/impasto.jar .device/lib/zstd-jni-*.jar .device/lib/hadoop-*.jar .device/lib/parquet-*.jar .device/lib/snappy-java-*.jar \
      .device/lib/aircompressor-*.jar .device/lib/commons-pool-*.jar .device/lib/jts-core-*.jar .device/lib/jmh-generator-*.jar .device/lib/commons-math3-*.jar .device/lib/jopt-simple-*.jar
du -sh .device
# test resources travel in the working tree already (gpu_suite.sh puts src/test/resources on the class path):
# keep only compiled classes in the archive
(cd target && tar czf ../.device/classes.tar.gz classes $(cd test-classes && find . -name '*.class' | sed 's#^\./#test-classes/#'))
du -sh .device
