using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;

namespace ModelParallel.Benchmarks
{
    /// <summary>Which implementation a measurement runs: ours as threads of one process, ours as mpiexec processes, or PyTorch.</summary>
    internal enum Side { Threads, Mpi, PyTorch }

    /// <summary>Starts one measurement of a row as its own process (<see cref="ChildProcess"/>), and installs what the rows need.</summary>
    internal static class Launch
    {
        public const string Python = "/usr/bin/python3"; // Debian's, which has python3-torch (the first python3 on PATH may not)

        public static double Measure(Side side, string model, string mesh, int steps) => side switch
        {
            Side.Threads => ChildProcess.Threads($"--ours {model} {mesh} {steps}"),
            Side.Mpi => ChildProcess.Mpi($"--ours {model} {mesh} {steps}"),
            _ => ChildProcess.Run(Python, $"\"{System.IO.Path.Combine(AppContext.BaseDirectory, "peers.py")}\" {model} {mesh} {steps}"),
        };

        /// <summary>
        /// mpiexec (MPICH) and PyTorch 1.13 with a real BLAS: installs them with apt when running as root, else says what
        /// to install. Without libopenblas0-pthread PyTorch falls back to the reference BLAS, about 12× slower.
        /// </summary>
        public static bool EnsurePrerequisites()
        {
            bool ready() => Runs("mpiexec", "--version") && Runs(Python, "-c \"import torch\"") && File.Exists("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3");
            if (ready()) return true;
            const string Packages = "python3-torch libopenblas0-pthread mpich libmpich-dev";
            if (Environment.UserName != "root")
            {
                Console.Error.WriteLine($"Peers needs MPICH and Debian's PyTorch: sudo apt-get install -y {Packages}");
                return false;
            }
            Console.WriteLine($"installing {Packages} (apt-get update, apt-get install) ...");
            // A fresh machine has no package lists yet: install alone cannot find the packages.
            foreach (var arguments in new[] { "update -qq", $"install -y -qq {Packages}" })
            {
                var apt = new ProcessStartInfo("apt-get", arguments) { UseShellExecute = false };
                apt.Environment["DEBIAN_FRONTEND"] = "noninteractive";
                using var process = Process.Start(apt)!;
                process.WaitForExit();
            }
            if (ready()) return true;
            Console.Error.WriteLine($"Peers: apt-get update && apt-get install -y {Packages} did not make mpiexec and {Python} with torch available");
            return false;
        }

        private static bool Runs(string program, string arguments)
        {
            try
            {
                using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
                process.StandardOutput.ReadToEnd();
                process.StandardError.ReadToEnd();
                process.WaitForExit();
                return process.ExitCode == 0;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return false; // not installed
            }
        }
    }
}
