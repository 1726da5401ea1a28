using System;
using System.IO;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>
/// Writes each generated *.PartitionReport.g.cs (comment lines holding Markdown) as a .md file, so the partition
/// of every [ParallelModule] can be read and diffed outside the IDE.
/// </summary>
public sealed class WritePartitionReports : Task
{
    [Required] public string GeneratedDirectory { get; set; } = "";

    [Required] public string OutputDirectory { get; set; } = "";

    public override bool Execute()
    {
        if (!Directory.Exists(GeneratedDirectory)) return true;
        foreach (var source in Directory.GetFiles(GeneratedDirectory, "*.PartitionReport.g.cs", SearchOption.AllDirectories))
        {
            var lines = File.ReadAllLines(source);
            int start = Array.IndexOf(lines, "// ---");
            if (start < 0) continue;
            var markdown = lines.Skip(start + 1).Select(l => l.StartsWith("// ", StringComparison.Ordinal) ? l.Substring(3) : l == "//" ? "" : l);
            Directory.CreateDirectory(OutputDirectory);
            var target = Path.Combine(OutputDirectory, Path.GetFileName(source).Replace(".PartitionReport.g.cs", ".md"));
            File.WriteAllLines(target, markdown);
            Log.LogMessage(MessageImportance.Normal, $"Partition report: {target}");
        }
        return true;
    }
}
