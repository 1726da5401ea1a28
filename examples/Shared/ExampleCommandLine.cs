using System;
using System.CommandLine;
using System.CommandLine.Help;
using System.Text.RegularExpressions;

namespace ModelParallel.Examples
{
    /// <summary>
    /// What the examples share on the command line: options with checked ranges, <c>--help</c>, and every user mistake
    /// (a bad value, a mesh the model does not divide) as one line on stderr with exit code 2, the same on threads and
    /// under mpiexec (where only rank 0 prints it).
    /// </summary>
    internal static class ExampleCommandLine
    {
        public const int UsageError = 2;

        /// <summary>An integer option that must be at least <paramref name="minimum"/>.</summary>
        public static Option<int> Count(string name, int defaultValue, string description, int minimum = 1)
        {
            var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
            option.Validators.Add(result =>
            {
                if (!TryGetValue(result, out int value)) return;
                if (value < minimum) result.AddError($"{name} must be at least {minimum}; got {value}.");
            });
            return option;
        }

        /// <summary>A size option (a layer dimension, a batch) that must be at least 1.</summary>
        public static Option<long> Size(string name, long defaultValue, string description)
        {
            var option = new Option<long>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
            option.Validators.Add(result =>
            {
                if (!TryGetValue(result, out long value)) return;
                if (value < 1) result.AddError($"{name} must be at least 1; got {value}.");
            });
            return option;
        }

        /// <summary>
        /// Parses <paramref name="args"/> and runs <paramref name="main"/>; <c>--help</c> prints the options. A parse error
        /// or a <see cref="PartitionException"/> (a size the mesh does not divide) is one line and exit code 2.
        /// </summary>
        public static int Run(RootCommand command, string[] args, Func<ParseResult, int> main)
        {
            var result = command.Parse(args);
            if (result.Errors.Count > 0) return Refuse($"{result.Errors[0].Message} (--help lists the options)");
            if (result.Action is HelpAction) return result.Invoke();
            try
            {
                return main(result);
            }
            catch (Exception e) when (e is PartitionException or UsageException or Checkpointing.CheckpointException)
            {
                return Refuse(e.Message);
            }
            catch (RankFailedException e) when (e.InnerException is PartitionException)
            {
                return Refuse(e.Message);
            }
            catch (RankFailedException e) when (e.InnerException is Checkpointing.CheckpointException or UsageException)
            {
                return Refuse(e.InnerException.Message); // a checkpoint that cannot be used, or a mistake found inside the run
            }
        }

        /// <summary>The option's value; false when it does not parse (the parser reports that error itself).</summary>
        private static bool TryGetValue<T>(System.CommandLine.Parsing.OptionResult result, out T value)
        {
            try
            {
                value = result.GetValueOrDefault<T>();
                return true;
            }
            catch (InvalidOperationException)
            {
                value = default!;
                return false;
            }
        }

        private static int Refuse(string message)
        {
            message = Regex.Replace(message, @"\s*\n\s*", " "); // one line, even for the parser's lists
            // Under mpiexec every process sees the same mistake; one line from rank 0 is enough.
            if (Environment.GetEnvironmentVariable("PMI_RANK") is null or "0")
                Console.Error.WriteLine($"{AppDomain.CurrentDomain.FriendlyName}: {message}");
            return UsageError;
        }
    }

    /// <summary>Options that are each valid but do not fit together (a batch the replicas cannot split evenly).</summary>
    internal sealed class UsageException(string message) : Exception(message);
}
