// SPDX-License-Identifier: GPL-2.0-only
/*
 * kbuild-py boot-test init: PID 1 of a throw-away initramfs that triggers ONE LKDTM test.
 *
 * Built by kbuild_py/boot.py with the profile's own compiler against the kernel tree's nolibc
 * (tools/include/nolibc) and its installed UAPI headers: no C library package is needed.
 *
 *   kbuild_py_test=<NAME>   LKDTM test to trigger (kernel command line, reaches init's environment)
 *   kbuild_py_repeat=<N>    trigger it N times, each from a new process (REPORT_STACK_CANARY: 2)
 *   kbuild_py_read=<p,...>  instead of a test: print the contents of these files (under /proc)
 *                           as "KBUILD-PY: value <path> <contents>", to check built-in defaults
 *
 * The test runs in a child process: LKDTM's protections kill the task that trips them, and
 * killing PID 1 would panic the kernel and hide the verdict. The child writes the name to
 * debugfs provoke-crash/DIRECT (never the lkdtm.cpoint_* boot parameters: they fire before
 * read-only and no-execute mappings are applied and report false failures).
 *
 * Every marker goes to /dev/kmsg so it sits in the kernel log in order with LKDTM's own
 * messages; the harness parses these exact words:
 *
 *   KBUILD-PY: start <NAME> repeat <N>
 *   KBUILD-PY: trigger <NAME> <i>/<N>
 *   KBUILD-PY: survived <NAME>          the write returned: LKDTM's test ran to its end
 *   KBUILD-PY: killed <NAME> signal <S> the kernel killed the task (an oops or BUG)
 *   KBUILD-PY: refused <NAME> errno <E> the write failed (unknown test name, for example)
 *   KBUILD-PY: error <what> errno <E>   the harness itself could not run the test
 *   KBUILD-PY: done <NAME>
 *
 * Then it reboots; QEMU runs with -no-reboot, so a reboot ends the emulator.
 */

#define TRIGGER "/debug/provoke-crash/DIRECT"

static int kmsg = -1;

static void say(const char *a, const char *b, const char *c, long n, int with_n)
{
	char line[256] = "<5>KBUILD-PY: ";
	char num[24];

	strlcat(line, a, sizeof(line));
	if (b) {
		strlcat(line, " ", sizeof(line));
		strlcat(line, b, sizeof(line));
	}
	if (c) {
		strlcat(line, " ", sizeof(line));
		strlcat(line, c, sizeof(line));
	}
	if (with_n) {
		ltoa_r(n, num);
		strlcat(line, " ", sizeof(line));
		strlcat(line, num, sizeof(line));
	}
	if (kmsg >= 0 && write(kmsg, line, strlen(line)) > 0)
		return;
	/* No /dev/kmsg: the console is the next best place (without the level prefix). */
	strlcat(line, "\n", sizeof(line));
	write(1, line + 3, strlen(line + 3));
}

static int trigger_once(const char *name)
{
	int fd = open(TRIGGER, O_WRONLY);
	ssize_t len = (ssize_t)strlen(name);

	if (fd < 0) {
		say("error", "open " TRIGGER, 0, errno, 1);
		return 2;
	}
	if (write(fd, name, len) != len) {
		say("refused", name, "errno", errno, 1);
		return 3;
	}
	close(fd);
	return 0;
}

/* Print the first line of each comma-separated /proc path, to check built-in defaults. */
static void read_values(const char *list)
{
	char path[128];
	size_t n = 0;

	mkdir("/proc", 0555);
	if (mount("proc", "/proc", "proc", 0, 0) != 0)
		say("error", "mount proc on /proc", 0, errno, 1);
	for (;; list++) {
		if (*list && *list != ',' && n < sizeof(path) - 1) {
			path[n++] = *list;
			continue;
		}
		path[n] = 0;
		if (n) {
			char value[64] = "";
			int fd = open(path, O_RDONLY);
			ssize_t got = fd >= 0 ? read(fd, value, sizeof(value) - 1) : -1;

			if (got < 0) {
				say("unreadable", path, 0, errno, 1);
			} else {
				value[got] = 0;
				while (got > 0 && (value[got - 1] == '\n' || value[got - 1] == ' '))
					value[--got] = 0;
				say("value", path, value, 0, 0);
			}
			if (fd >= 0)
				close(fd);
		}
		n = 0;
		if (!*list)
			break;
	}
}

static void finish(const char *name)
{
	say("done", name, 0, 0, 0);
	reboot(RB_AUTOBOOT);
	/* Reboot refused: QEMU's timeout ends the run. */
	for (;;)
		sleep(3600);
}

int main(int argc, char **argv, char **envp)
{
	const char *name = getenv("kbuild_py_test");
	const char *rep = getenv("kbuild_py_repeat");
	const char *reads = getenv("kbuild_py_read");
	long repeat = rep ? atoi(rep) : 1;
	long i;

	(void)argc;
	(void)argv;
	(void)envp;
	kmsg = open("/dev/kmsg", O_WRONLY);
	if (reads && *reads) {
		read_values(reads);
		finish("values");
	}
	if (!name || !*name) {
		say("error", "no kbuild_py_test= on the kernel command line", 0, 0, 0);
		finish("none");
	}
	if (repeat < 1 || repeat > 16)
		repeat = 1;
	if (mount("debugfs", "/debug", "debugfs", 0, 0) != 0) {
		say("error", "mount debugfs on /debug", 0, errno, 1);
		finish(name);
	}
	say("start", name, "repeat", repeat, 1);
	for (i = 1; i <= repeat; i++) {
		char count[48];
		char total[24];
		int status = 0;
		pid_t pid;

		ltoa_r(i, count);
		ltoa_r(repeat, total);
		strlcat(count, "/", sizeof(count));
		strlcat(count, total, sizeof(count));
		say("trigger", name, count, 0, 0);
		pid = fork();
		if (pid == 0)
			exit(trigger_once(name));
		if (pid < 0) {
			say("error", "fork", 0, errno, 1);
			break;
		}
		if (waitpid(pid, &status, 0) != pid) {
			say("error", "waitpid", 0, errno, 1);
			break;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			say("survived", name, 0, 0, 0);
		else if (WIFEXITED(status))
			say("exited", name, "status", WEXITSTATUS(status), 1);
		else
			say("killed", name, "signal", WTERMSIG(status), 1);
	}
	finish(name);
	return 0;
}
