package bounded

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const (
	testTimeout  = 10 * time.Second
	shortTimeout = 20 * time.Millisecond
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func shortCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), shortTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitBlocked polls until m has n waiters of the given kind registered, so
// tests know a goroutine is parked without sleeping.
func waitBlocked[K comparable, V any](t testing.TB, m *Map[K, V], room bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		ok := (room && m.room != nil) || (!room && m.added != nil)
		m.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no waiter registered")
}

func TestCapacity(t *testing.T) {
	ctx := testCtx(t)
	m := New[string, int](2)
	if m.Cap() != 2 {
		t.Fatalf("Cap() = %d", m.Cap())
	}
	if err := m.Set(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	if !m.TrySet("b", 2) {
		t.Fatal("TrySet(b) = false with room")
	}
	if m.TrySet("c", 3) {
		t.Fatal("TrySet(c) = true when full")
	}
	if !m.TrySet("a", 10) {
		t.Fatal("TrySet(a) replacing = false when full")
	}
	if err := m.Set(ctx, "b", 20); err != nil {
		t.Fatalf("Set(b) replacing when full: %v", err)
	}
	if m.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", m.Len())
	}
	if v, ok := m.Load("a"); !ok || v != 10 {
		t.Fatalf("Load(a) = %d, %v", v, ok)
	}
	if _, ok := m.Load("c"); ok {
		t.Fatal("Load(c) found")
	}
	if v, ok := m.Delete("a"); !ok || v != 10 {
		t.Fatalf("Delete(a) = %d, %v", v, ok)
	}
	if _, ok := m.Delete("a"); ok {
		t.Fatal("second Delete(a) found")
	}
	if !m.TrySet("c", 3) {
		t.Fatal("TrySet(c) after Delete = false")
	}
}

func TestZeroValueUnbounded(t *testing.T) {
	ctx := testCtx(t)
	for _, m := range []*Map[int, int]{{}, New[int, int](0), New[int, int](-1)} {
		for i := range 1000 {
			if err := m.Set(ctx, i, i); err != nil {
				t.Fatal(err)
			}
		}
		if m.Len() != 1000 {
			t.Fatalf("Len() = %d", m.Len())
		}
	}
	var m Map[string, string]
	if _, ok := m.Delete("x"); ok {
		t.Fatal("Delete on zero Map found a key")
	}
	if _, err := m.Get(shortCtx(t), "x"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Get on zero Map = %v", err)
	}
}

func TestSetWaitsForRoom(t *testing.T) {
	ctx := testCtx(t)
	m := New[int, string](1)
	m.TrySet(1, "one")
	done := make(chan error, 1)
	go func() { done <- m.Set(ctx, 2, "two") }()
	waitBlocked(t, m, true)
	select {
	case err := <-done:
		t.Fatalf("Set returned %v while full", err)
	default:
	}
	if _, ok := m.Delete(1); !ok {
		t.Fatal("Delete(1) missing")
	}
	if err := <-done; err != nil {
		t.Fatalf("Set after Delete: %v", err)
	}
	if v, _ := m.Load(2); v != "two" {
		t.Fatalf("Load(2) = %q", v)
	}
}

func TestSetTimeoutAndCancel(t *testing.T) {
	m := New[int, int](1)
	m.TrySet(1, 1)

	start := time.Now()
	err := m.Set(shortCtx(t), 2, 2)
	if !errors.Is(err, ErrFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set = %v, want ErrFull and DeadlineExceeded", err)
	}
	if d := time.Since(start); d < shortTimeout {
		t.Fatalf("Set returned after %v, before the deadline", d)
	}

	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- m.Set(ctx, 3, 3) }()
	waitBlocked(t, m, true)
	cancel()
	if err := <-done; !errors.Is(err, ErrFull) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Set = %v, want ErrFull and Canceled", err)
	}
	if m.Len() != 1 {
		t.Fatalf("Len() = %d after failed Sets", m.Len())
	}
	// With room, an already-done ctx does not matter.
	m.Delete(1)
	if err := m.Set(ctx, 4, 4); err != nil {
		t.Fatalf("Set with room and cancelled ctx: %v", err)
	}
}

func TestGetWaitsForKey(t *testing.T) {
	ctx := testCtx(t)
	m := New[string, int](4)
	type result struct {
		v   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		v, err := m.Get(ctx, "k")
		got <- result{v, err}
	}()
	waitBlocked(t, m, false)
	m.TrySet("other", 1) // wakes the waiter, which must wait again
	if err := m.Set(ctx, "k", 42); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || r.v != 42 {
		t.Fatalf("Get = %d, %v", r.v, r.err)
	}
	if m.Len() != 2 {
		t.Fatalf("Get removed the key: Len() = %d", m.Len())
	}
}

func TestTake(t *testing.T) {
	ctx := testCtx(t)
	m := New[int, int](1)
	m.TrySet(1, 10)
	// Take of a present key removes it and makes room for a waiting Set.
	setDone := make(chan error, 1)
	go func() { setDone <- m.Set(ctx, 2, 20) }()
	waitBlocked(t, m, true)
	if v, err := m.Take(ctx, 1); err != nil || v != 10 {
		t.Fatalf("Take(1) = %d, %v", v, err)
	}
	if err := <-setDone; err != nil {
		t.Fatalf("Set(2): %v", err)
	}
	// Take of an absent key waits for it.
	got := make(chan int, 1)
	go func() {
		v, err := m.Take(ctx, 3)
		if err != nil {
			v = -1
		}
		got <- v
	}()
	waitBlocked(t, m, false)
	m.Delete(2)
	m.TrySet(3, 30)
	if v := <-got; v != 30 {
		t.Fatalf("Take(3) = %d", v)
	}
	if m.Len() != 0 {
		t.Fatalf("Len() = %d after Take", m.Len())
	}
	if _, err := m.Take(shortCtx(t), 4); !errors.Is(err, ErrNoKey) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Take(4) = %v, want ErrNoKey and DeadlineExceeded", err)
	}
}

func TestGetCancel(t *testing.T) {
	m := New[int, int](1)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := m.Get(ctx, 1)
		done <- err
	}()
	waitBlocked(t, m, false)
	cancel()
	if err := <-done; !errors.Is(err, ErrNoKey) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want ErrNoKey and Canceled", err)
	}
}

func TestRange(t *testing.T) {
	m := New[int, int](10)
	for i := range 5 {
		m.TrySet(i, i*i)
	}
	var keys []int
	m.Range(func(k, v int) bool {
		if v != k*k {
			t.Errorf("Range gave %d=%d", k, v)
		}
		keys = append(keys, k)
		m.Delete(k) // allowed: f runs without the lock
		return true
	})
	sort.Ints(keys)
	if fmt.Sprint(keys) != "[0 1 2 3 4]" || m.Len() != 0 {
		t.Fatalf("Range keys %v, Len() %d", keys, m.Len())
	}
	for i := range 5 {
		m.TrySet(i, i)
	}
	n := 0
	m.Range(func(int, int) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Range did not stop: %d calls", n)
	}
}

// TestConcurrent runs producers and consumers through a small map; every
// value must arrive exactly once and the capacity must hold throughout.
func TestConcurrent(t *testing.T) {
	ctx := testCtx(t)
	const (
		capacity  = 4
		producers = 8
		perProd   = 200
	)
	m := New[int, int](capacity)
	var wg sync.WaitGroup
	errs := make(chan error, 2*producers)
	for p := range producers {
		wg.Go(func() {
			for i := range perProd {
				k := p*perProd + i
				if err := m.Set(ctx, k, k); err != nil {
					errs <- err
					return
				}
				if n := m.Len(); n > capacity {
					errs <- fmt.Errorf("Len() = %d > %d", n, capacity)
					return
				}
			}
		})
		wg.Go(func() {
			for i := range perProd {
				k := p*perProd + i
				v, err := m.Take(ctx, k)
				if err != nil {
					errs <- err
					return
				}
				if v != k {
					errs <- fmt.Errorf("Take(%d) = %d", k, v)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Fatalf("Len() = %d at the end", m.Len())
	}
}

func TestAddAndDeleteIf(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := New[string, int](1)
	if err := m.Add(ctx, "a", 1); err != nil {
		t.Fatalf("Add(a) = %v", err)
	}
	if err := m.Add(ctx, "a", 2); !errors.Is(err, ErrExists) {
		t.Fatalf("Add(a) again = %v, want ErrExists", err)
	}
	if v, _ := m.Load("a"); v != 1 {
		t.Fatalf("Add replaced the value: got %d, want 1", v)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := m.Add(short, "b", 2); !errors.Is(err, ErrFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Add(b) on a full map = %v, want ErrFull and DeadlineExceeded", err)
	}
	if m.DeleteIf("a", func(v int) bool { return v == 2 }) {
		t.Fatal("DeleteIf removed an entry whose value did not match")
	}
	done := make(chan error, 1)
	go func() { done <- m.Add(ctx, "b", 2) }() // waits for room
	if !m.DeleteIf("a", func(v int) bool { return v == 1 }) {
		t.Fatal("DeleteIf did not remove the matching entry")
	}
	if err := <-done; err != nil {
		t.Fatalf("Add(b) after room = %v", err)
	}
	if v, ok := m.Load("b"); !ok || v != 2 {
		t.Fatalf("Load(b) = %d, %v", v, ok)
	}
}
