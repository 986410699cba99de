package dev.impasto.cli;

/** Entry point of the `impasto` launcher. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.out.println("impasto: skeleton");
    }
}
