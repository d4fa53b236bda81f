#include "tests/support/process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace certfleet::test {
namespace {

std::vector<char*> c_args(std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (auto& a : argv) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

void apply_env(const std::map<std::string, std::string>& env) {
  for (auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
}

}  // namespace

run_result run(const std::vector<std::string>& argv_in, const std::string& input,
               const std::map<std::string, std::string>& env) {
  auto argv = argv_in;
  int in[2], out[2], err[2];
  if (::pipe(in) != 0 || ::pipe(out) != 0 || ::pipe(err) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    apply_env(env);
    auto args = c_args(argv);
    ::execv(args[0], args.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Write stdin from a thread so a child that writes a lot before reading cannot deadlock us.
  std::thread writer([fd = in[1], input] {
    // A child that exits without reading its input must fail the test, not kill it with SIGPIPE:
    // blocked here, the signal stays pending on this thread (gone when it ends) and write() fails.
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    size_t off = 0;
    while (off < input.size()) {
      auto n = ::write(fd, input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  run_result r;
  std::thread err_reader([&] { r.err = read_all(err[0]); });
  r.out = read_all(out[0]);
  err_reader.join();
  writer.join();
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

child::child(std::vector<std::string> argv, std::filesystem::path log,
             const std::map<std::string, std::string>& env)
    : log_(std::move(log)) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    apply_env(env);
    auto args = c_args(argv);
    ::execv(args[0], args.data());
    _exit(127);
  }
}

child::~child() {
  if (pid_ > 0) stop();
}

bool child::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = status;
    pid_ = -1;
    return false;
  }
  return true;
}

int child::stop(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return status_;
  ::kill(pid_, sig);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = status;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status_, 0);
  pid_ = -1;
  return status_;
}

std::string child::log() const {
  std::ifstream in{log_};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

uint16_t free_port_range(int n) {
  // Ports below the ephemeral range are not handed out to connects, so a range there stays free.
  static uint16_t next = static_cast<uint16_t>(20000 + (::getpid() % 200) * 50);
  for (int tries = 0; tries < 200; ++tries) {
    uint16_t base = next;
    next = static_cast<uint16_t>(next + n + 1);
    if (next > 30000) next = 20000;
    bool all_free = true;
    for (int i = 0; i < n && all_free; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(base + i));
      all_free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      ::close(fd);
    }
    if (all_free) return base;
  }
  return 0;
}

std::string binary(const std::string& relative) {
  return std::string{CERTFLEET_BINARY_DIR} + "/" + relative;
}

std::vector<std::string> ldb_values(const std::string& scan) {
  std::vector<std::string> out;
  std::istringstream lines{scan};
  for (std::string line; std::getline(lines, line);) {
    auto sep = line.find(" : 0x");
    if (sep == std::string::npos) continue;
    auto hex = line.substr(sep + 5);
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    out.push_back(bytes);
  }
  return out;
}

std::string thread_stacks(pid_t pid) {
  if (!std::filesystem::exists("/usr/bin/gdb")) return "(no gdb to show the threads' stacks)\n";
  auto r =
      run({"/usr/bin/gdb", "-batch", "-p", std::to_string(pid), "-ex", "thread apply all bt 40"});
  return "threads of process " + std::to_string(pid) + ":\n" + r.out;
}

std::vector<std::filesystem::path> files_containing(const std::filesystem::path& dir,
                                                    const std::string& needle) {
  std::vector<std::filesystem::path> out;
  for (auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in{entry.path(), std::ios::binary};
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content.find(needle) != std::string::npos) out.push_back(entry.path());
  }
  return out;
}

}  // namespace certfleet::test
