#!/usr/bin/env bash
# Builds the whole solution (libraries, examples, benchmarks, tests) and runs every test assembly.
# Prints one closing line "N passed, N failed, N skipped" summed over all assemblies; exits non-zero
# when anything fails or when no test ran. Usage: ./test.sh [extra dotnet test arguments]
set -uo pipefail
cd "$(dirname "$0")"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET SDK 10 is required (dotnet on PATH)." >&2
  exit 2
fi

# The Mpi tests start real mpiexec jobs: MPICH must be installed (MPI.NET needs MPICH's ABI).
if ! command -v mpiexec >/dev/null 2>&1 || ! ldconfig -p 2>/dev/null | grep -q 'libmpich\.so\.12'; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing MPICH (apt-get install -y mpich libmpich-dev)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mpich libmpich-dev >/dev/null \
      || { echo "test.sh: installing MPICH failed." >&2; exit 2; }
  else
    echo "test.sh: MPICH is required for the Mpi tests. Install it with: sudo apt-get install -y mpich libmpich-dev" >&2
    exit 2
  fi
fi

# The editor test starts csharp-ls, pinned in dotnet-tools.json.
echo "== dotnet tool restore (csharp-ls for the editor test)"
dotnet tool restore >/dev/null || { echo "test.sh: dotnet tool restore failed (csharp-ls 0.28.0 from NuGet)." >&2; exit 2; }

configuration=${CONFIGURATION:-Release}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== build ($configuration)"
if ! dotnet build Dsl.sln -c "$configuration" -nologo -v q; then
  echo "0 passed, 1 failed"
  echo "test.sh: the build failed." >&2
  exit 1
fi

echo "== test"
dotnet test Dsl.sln -c "$configuration" --no-build -nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# One summary line per test assembly: "Passed!  - Failed:     0, Passed:    41, Skipped:     0, ..."
read -r passed failed skipped < <(grep -E '(Passed|Failed)! +- Failed: ' "$log" | sed -E 's/.*Failed: +([0-9]+), Passed: +([0-9]+), Skipped: +([0-9]+).*/\2 \1 \3/' \
  | awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}')
assemblies=$(grep -cE '(Passed|Failed)! +- Failed: ' "$log")
expected_assemblies=$(dotnet sln Dsl.sln list | grep -cE '^tests/.*Tests\.csproj$')

echo "$passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  echo "test.sh: tests failed (dotnet test exit code $status)." >&2
  exit 1
fi
if [ "$passed" -eq 0 ] || [ "$assemblies" -ne "$expected_assemblies" ]; then
  echo "test.sh: expected results from $expected_assemblies test assemblies; got $assemblies summaries and $passed passing tests." >&2
  exit 1
fi
