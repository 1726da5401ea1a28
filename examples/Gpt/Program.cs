using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using Microsoft.ML.Tokenizers;
using ModelParallel;
using ModelParallel.Checkpointing;
using ModelParallel.Examples;
using ModelParallel.Examples.Gpt.Data;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Examples.Gpt.Training;
using TorchSharp;

// Trains a GPT-2-style model on real text (by default the .NET SDK's own XML documentation), tokenized with GPT-2's
// byte-level BPE, on a dp × pp × tp mesh: threads in this process, or the same dll under mpiexec -n dp·pp·tp.
var dpOption = ExampleCommandLine.Count("--dp", 1, "Data-parallel replicas (each trains on its own rows of the batch).");
var ppOption = ExampleCommandLine.Count("--pp", 2, "Pipeline stages the blocks are split over.");
var tpOption = ExampleCommandLine.Count("--tp", 2, "Tensor-parallel ranks each layer is split across (heads must divide).");
var scheduleOption = new Option<string>("--schedule") { Description = "Pipeline schedule: gpipe, 1f1b or interleaved (2 chunks per pp rank).", DefaultValueFactory = _ => "1f1b" };
scheduleOption.AcceptOnlyFromAmong("gpipe", "1f1b", "interleaved");
var microbatchesOption = ExampleCommandLine.Count("--microbatches", 2, "Micro-batches per step (must divide --batch).");
var stepsOption = ExampleCommandLine.Count("--steps", 200, "Training steps.");
var widthOption = ExampleCommandLine.Size("--width", 128, "Model width.");
var depthOption = ExampleCommandLine.Count("--depth", 4, "Transformer blocks.");
var headsOption = ExampleCommandLine.Size("--heads", 4, "Attention heads.");
var contextOption = ExampleCommandLine.Size("--context", 64, "Tokens per sequence.");
var batchOption = ExampleCommandLine.Size("--batch", 8, "Sequences per dp replica per step.");
var learningRateOption = new Option<double>("--lr") { Description = "Peak learning rate (AdamW; warm-up, then cosine decay).", DefaultValueFactory = _ => 3e-3 };
var validateEveryOption = ExampleCommandLine.Count("--validate-every", 25, "Steps between validation losses.");
var corpusOption = new Option<string?>("--corpus") { Description = "A text file or folder (.txt, .md, .xml) to train on instead of the SDK's documentation." };
var cacheOption = new Option<string>("--cache") { Description = "Where tokenized corpora are kept.", DefaultValueFactory = _ => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "ModelParallel", "tokens") };
var outputOption = new Option<string>("--output") { Description = "Where the metrics file and the loss plot go.", DefaultValueFactory = _ => "gpt-output" };
var promptOption = new Option<string>("--prompt") { Description = "Text the trained model continues at the end.", DefaultValueFactory = _ => "Gets the value of the" };
var sampleOption = ExampleCommandLine.Count("--sample-tokens", 24, "Tokens to generate after the prompt.", minimum: 0);
var topKOption = ExampleCommandLine.Count("--top-k", 1, "Sample from the k most likely tokens (1: greedy).");
var checkpointOption = new Option<string?>("--checkpoint") { Description = "A folder for checkpoints (sharded safetensors and a manifest; the newest few are kept)." };
var saveEveryOption = ExampleCommandLine.Count("--save-every", 0, "Save a checkpoint every N steps and at the end (needs --checkpoint; 0: never).", minimum: 0);
var resumeOption = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in --checkpoint, on this mesh whatever mesh saved it." };
var command = new RootCommand("Trains a GPT on real text on a dp × pp × tp mesh (threads, or processes under mpiexec), with progress, validation, metrics, a loss plot and a sample.")
{
    dpOption, ppOption, tpOption, scheduleOption, microbatchesOption, stepsOption, widthOption, depthOption, headsOption, contextOption,
    batchOption, learningRateOption, validateEveryOption, corpusOption, cacheOption, outputOption, promptOption, sampleOption, topKOption,
    checkpointOption, saveEveryOption, resumeOption,
};

return ExampleCommandLine.Run(command, args, parsed =>
{
    var tokenizer = TiktokenTokenizer.CreateForModel("gpt2");
    var config = new GptConfig(TokenCache.Gpt2Vocabulary, parsed.GetValue(widthOption), parsed.GetValue(depthOption), parsed.GetValue(headsOption), parsed.GetValue(contextOption));
    var mesh = new MeshShape(dp: parsed.GetValue(dpOption), pp: parsed.GetValue(ppOption), tp: parsed.GetValue(tpOption));
    var options = new TrainingOptions(config, mesh)
    {
        Schedule = parsed.GetValue(scheduleOption)!,
        Microbatches = parsed.GetValue(microbatchesOption),
        Steps = parsed.GetValue(stepsOption),
        Batch = parsed.GetValue(batchOption),
        LearningRate = parsed.GetValue(learningRateOption),
        ValidateEvery = parsed.GetValue(validateEveryOption),
        Checkpoint = parsed.GetValue(checkpointOption),
        SaveEvery = parsed.GetValue(saveEveryOption),
        Resume = parsed.GetValue(resumeOption),
    };
    if (options.Checkpoint is null && (options.SaveEvery > 0 || options.Resume))
        throw new UsageException($"{(options.Resume ? "--resume" : "--save-every")} needs --checkpoint DIR.");
    if (options.LearningRate <= 0) throw new UsageException($"--lr must be positive; got {options.LearningRate}.");
    config.Check(mesh.Tp, mesh.Pp, options.VirtualStages);
    if (options.Resume && Checkpoint.Shapes(options.Checkpoint!).TryGetValue("embedding.tokens.weight", out var saved))
    {
        // The vocabulary was padded for the saving mesh's tp; the resumed model keeps that size, which this tp must divide.
        if (saved[0] % (128L * mesh.Tp) != 0)
            throw new UsageException($"The checkpoint's vocabulary is padded to {saved[0]} rows, which 128 × --tp {mesh.Tp} does not divide; resume with a --tp that divides {saved[0] / 128}.");
        options = options with { BuiltVocabulary = saved[0] };
    }
    if (options.Batch % options.Microbatches != 0) throw new UsageException($"--batch {options.Batch} must be divisible by --microbatches {options.Microbatches}.");
    var runOptions = new RunOptions { VirtualPipelineStages = options.VirtualStages };
    // Every size the mesh must divide is checked on the meta device before any work.
    Ranks.Validate(mesh, () => new GptModel(config, options.Vocabulary), runOptions);
    var corpus = Corpus.Open(parsed.GetValue(corpusOption));
    torch.set_num_threads(1);
    return GptJob.Run(options, runOptions, corpus, tokenizer, parsed.GetValue(cacheOption)!, parsed.GetValue(outputOption)!,
        parsed.GetValue(promptOption)!, parsed.GetValue(sampleOption), parsed.GetValue(topKOption));
});
