package dev.impasto.serve;

import dev.impasto.api.ImageGenerator;
import java.nio.file.Path;
import java.util.Map;

/** One generation request as it moves through the queue; its fields change under its own monitor, and waiters are notified. */
final class Job {
    enum State { QUEUED, RUNNING, DONE, FAILED }

    final String id;
    final ImageGenerator.Request request;
    final long createdMillis = System.currentTimeMillis();
    private State state = State.QUEUED;
    private int step;
    private String error;
    private byte[] png;
    private Path file;
    private Map<String, String> settings;
    private long millis;
    private long version;

    Job(String id, ImageGenerator.Request request) {
        this.id = id;
        this.request = request;
    }

    synchronized State state() {
        return state;
    }

    synchronized int step() {
        return step;
    }

    synchronized String error() {
        return error;
    }

    synchronized byte[] png() {
        return png;
    }

    synchronized Path file() {
        return file;
    }

    synchronized Map<String, String> settings() {
        return settings;
    }

    synchronized long millis() {
        return millis;
    }

    synchronized long version() {
        return version;
    }

    synchronized boolean finished() {
        return state == State.DONE || state == State.FAILED;
    }

    synchronized void running() {
        state = State.RUNNING;
        changed();
    }

    synchronized void step(int s) {
        step = s;
        changed();
    }

    synchronized void done(byte[] pngBytes, Path savedFile, Map<String, String> resultSettings, long tookMillis) {
        state = State.DONE;
        step = request.steps();
        png = pngBytes;
        file = savedFile;
        settings = resultSettings;
        millis = tookMillis;
        changed();
    }

    synchronized void failed(String message) {
        state = State.FAILED;
        error = message;
        changed();
    }

    /** Drops the in-memory picture (it stays readable from its saved file, if any). */
    synchronized void evictPng() {
        png = null;
    }

    /** Waits until the job changes after {@code seen} or the timeout passes; returns the current version. */
    synchronized long awaitChange(long seen, long timeoutMillis) throws InterruptedException {
        long end = System.currentTimeMillis() + timeoutMillis;
        while (version == seen) {
            long left = end - System.currentTimeMillis();
            if (left <= 0) break;
            wait(left);
        }
        return version;
    }

    private void changed() {
        version++;
        notifyAll();
    }
}
