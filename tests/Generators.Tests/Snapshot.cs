using System;
using System.IO;
using System.Runtime.CompilerServices;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// Approved-file snapshots: the text must equal Snapshots/NAME.verified.cs. On a difference the test writes
    /// NAME.received.cs beside it and fails showing the first differing line. ACCEPT_SNAPSHOTS=1 approves the
    /// received text instead (an explicit act; never automatic).
    /// </summary>
    internal static class Snapshot
    {
        public static void Match(string name, string actual, [CallerFilePath] string caller = "")
        {
            var folder = Path.Combine(Path.GetDirectoryName(caller)!, "Snapshots");
            var approved = Path.Combine(folder, name + ".verified.cs");
            var received = Path.Combine(folder, name + ".received.cs");
            actual = actual.Replace("\r\n", "\n");
            if (Environment.GetEnvironmentVariable("ACCEPT_SNAPSHOTS") == "1")
            {
                Directory.CreateDirectory(folder);
                File.WriteAllText(approved, actual);
                if (File.Exists(received)) File.Delete(received);
                return;
            }
            var expected = File.Exists(approved) ? File.ReadAllText(approved).Replace("\r\n", "\n") : null;
            if (expected == actual)
            {
                if (File.Exists(received)) File.Delete(received);
                return;
            }
            File.WriteAllText(received, actual);
            Assert.Fail(expected is null
                ? $"No approved snapshot {approved}. Review {received} and approve it with ACCEPT_SNAPSHOTS=1."
                : $"Snapshot {name} differs from {approved}:\n{FirstDifference(expected, actual)}\nReview {received}; approve with ACCEPT_SNAPSHOTS=1.");
        }

        private static string FirstDifference(string expected, string actual)
        {
            var e = expected.Split('\n');
            var a = actual.Split('\n');
            for (int i = 0; i < Math.Max(e.Length, a.Length); i++)
            {
                var left = i < e.Length ? e[i] : "<end>";
                var right = i < a.Length ? a[i] : "<end>";
                if (left != right) return $"line {i + 1}\n- {left}\n+ {right}";
            }
            return "(line endings only)";
        }
    }
}
