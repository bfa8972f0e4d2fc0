package sandbox

import (
	"container/heap"
	"sync"
	"time"
)

// MaxScheduled bounds the events waiting for their time (SMS delivery,
// the states of inbound calls, auth deadlines), so that a client in a
// loop cannot fill the memory.
const MaxScheduled = 100_000

// scheduler runs jobs when the sandbox's clock reaches their time. One
// goroutine waits on a real timer for the earliest; it starts with the
// first job and ends when none is left, so a sandbox that never emits
// events never starts it. A job must not block: it runs on that
// goroutine.
type scheduler struct {
	now func() time.Time

	mu      sync.Mutex
	jobs    jobHeap
	seq     uint64
	running bool
	stopped bool
	wake    chan struct{} // cap 1
	stop    chan struct{}
	done    sync.WaitGroup
}

type job struct {
	due time.Time
	seq uint64 // jobs due at once run in the order scheduled
	run func()
}

type jobHeap []job

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h jobHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)   { *h = append(*h, x.(job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = job{}
	*h = old[:len(old)-1]
	return j
}

func newScheduler(now func() time.Time) *scheduler {
	return &scheduler{now: now, wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// at schedules run for due; it reports false, and drops run, when the
// scheduler is full or stopped.
func (sc *scheduler) at(due time.Time, run func()) bool {
	return sc.atMost(due, run, MaxScheduled)
}

// atMost is at, refused once limit jobs are waiting.
func (sc *scheduler) atMost(due time.Time, run func(), limit int) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.stopped || len(sc.jobs) >= limit {
		return false
	}
	sc.seq++
	heap.Push(&sc.jobs, job{due: due, seq: sc.seq, run: run})
	if !sc.running {
		sc.running = true
		sc.done.Add(1)
		go sc.loop()
	}
	sc.poke()
	return true
}

// room reports whether n more jobs fit.
func (sc *scheduler) room(n int) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return !sc.stopped && len(sc.jobs)+n <= MaxScheduled
}

// poke makes the loop look at the clock again.
func (sc *scheduler) poke() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

func (sc *scheduler) loop() {
	defer sc.done.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		sc.mu.Lock()
		now := sc.now()
		var due []func()
		for len(sc.jobs) > 0 && !sc.jobs[0].due.After(now) {
			due = append(due, heap.Pop(&sc.jobs).(job).run)
		}
		if len(due) == 0 && len(sc.jobs) == 0 {
			sc.running = false
			sc.mu.Unlock()
			return
		}
		wait := time.Duration(-1)
		if len(sc.jobs) > 0 {
			wait = sc.jobs[0].due.Sub(now)
		}
		sc.mu.Unlock()
		for _, run := range due {
			run()
		}
		if len(due) > 0 {
			continue // the jobs may have scheduled more, or the clock moved
		}
		timer.Reset(wait)
		select {
		case <-sc.stop:
			return
		case <-sc.wake:
		case <-timer.C:
		}
	}
}

// close drops every job and waits for the loop to end.
func (sc *scheduler) close() {
	sc.mu.Lock()
	if !sc.stopped {
		sc.stopped = true
		sc.jobs = nil
		close(sc.stop)
	}
	sc.mu.Unlock()
	sc.done.Wait()
}
