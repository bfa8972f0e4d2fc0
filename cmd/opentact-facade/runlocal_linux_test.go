package main_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestRunScriptCtrlCUnderMake runs scripts/run-local.sh as `make run`
// does, under make on a terminal, and types Ctrl-C there: make itself
// ends with status 0 and says nothing of it, and nothing is left running
// in the terminal's session. (GNU make, once it has seen SIGINT, ends
// itself with it: the script keeps Ctrl-C from reaching make.)
func TestRunScriptCtrlCUnderMake(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"make", "ps"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	script, err := filepath.Abs(runLocalScript)
	if err != nil {
		t.Fatal(err)
	}
	makefile := filepath.Join(t.TempDir(), "Makefile")
	if err := os.WriteFile(makefile, []byte("run:\n\t@\"$$SCRIPT\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	master, tty := openPTY(t)

	ports := freeAddrs(t, 4)
	cmd := exec.Command("make", "-f", makefile, "run")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "SCRIPT="+script, "BIN="+binDir,
		"SANDBOX_ADDR="+ports[0], "GRPC_ADDR="+ports[1], "HTTP_ADDR="+ports[2], "ADMIN_ADDR="+ports[3])
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// make leads a session whose controlling terminal is tty, as a shell
	// in a terminal would have it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	session := cmd.Process.Pid
	t.Cleanup(func() {
		for _, pid := range sessionProcesses(t, session) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	out := &lockedBuffer{}
	go func() { _, _ = io.Copy(out, master) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	deadline := time.After(time.Minute)
	for !strings.Contains(out.String(), readyLine) {
		select {
		case err := <-done:
			t.Fatalf("make exited (%v) before the script printed its calls:\n%s", err, out)
		case <-deadline:
			t.Fatalf("the script printed no calls within a minute:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := master.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("make run after Ctrl-C: %v, want exit status 0\n%s", err, out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("make run still runs a minute after Ctrl-C:\n%s", out)
	}
	if strings.Contains(out.String(), "make: ***") {
		t.Errorf("make reported a failure:\n%s", out)
	}
	for _, pid := range sessionProcesses(t, session) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		t.Errorf("process %d (%s) left in the terminal's session after make exited", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	assertRefused(t, ports...)
}

// openPTY opens a pseudo-terminal pair: the master, and the terminal a
// child process is given.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if err := ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatal(err)
	}
	var n uint32
	if err := ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, tty
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// sessionProcesses lists the processes of session sid, from /proc.
func sessionProcesses(t *testing.T, sid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp session ...; comm may hold anything.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 3 && fields[3] == strconv.Itoa(sid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
