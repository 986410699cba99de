package dev.impasto.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class CloseablesTest {
    @Test
    void closesLastFirstAndEmptiesTheList() {
        List<String> closed = new ArrayList<>();
        List<AutoCloseable> owned = new ArrayList<>();
        for (String name : List.of("a", "b", "c")) owned.add(() -> closed.add(name));
        Closeables.closeReversed(owned);
        assertEquals(List.of("c", "b", "a"), closed);
        assertEquals(0, owned.size());
    }

    @Test
    void aFailingCloseStopsThereWrapped() {
        List<String> closed = new ArrayList<>();
        Exception boom = new Exception("boom");
        List<AutoCloseable> owned = new ArrayList<>(List.of(() -> closed.add("a"), () -> { throw boom; }, () -> closed.add("c")));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Closeables.closeReversed(owned));
        assertSame(boom, e.getCause());
        assertEquals(List.of("c"), closed);
        assertEquals(3, owned.size(), "the list is left as it was");
    }
}
