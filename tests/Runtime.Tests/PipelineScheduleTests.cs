using System.Collections.Generic;
using System.Linq;
using ModelParallel.Pipelining;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>The schedules as data: every generated one is valid; hand-broken ones are rejected with the ranks and actions named.</summary>
    [Trait("Category", "Pipeline")]
    public sealed class PipelineScheduleTests
    {
        public static IEnumerable<object[]> Generated()
        {
            foreach (int p in new[] { 1, 2, 3, 4, 8 })
            foreach (int m in new[] { 1, 2, 3, 4, 8, 16, 32 })
            {
                yield return new object[] { "gpipe", p, m, 1 };
                yield return new object[] { "1f1b", p, m, 1 };
                foreach (int v in new[] { 1, 2, 3, 4 })
                    if (m % p == 0) yield return new object[] { "interleaved", p, m, v };
            }
        }

        [Theory]
        [MemberData(nameof(Generated))]
        public void EveryGeneratedScheduleIsValid(string name, int p, int m, int v)
        {
            var schedule = PipelineSchedule.Create(name, p, m, v, shape: new long[] { 4, 8 });
            Assert.Empty(PipelineScheduleValidator.Problems(schedule));
            // Independent counts: each rank runs m forwards and m backwards per chunk, and one send and one receive per stage boundary and micro-batch.
            for (int r = 0; r < p; r++)
            {
                Assert.Equal(m * v, schedule.Ranks[r].Count(a => a.Kind == PipelineActionKind.Forward));
                Assert.Equal(m * v, schedule.Ranks[r].Count(a => a.Kind == PipelineActionKind.Backward));
            }
            int boundaries = p * v - 1;
            Assert.Equal(2 * m * boundaries, schedule.Ranks.Sum(actions => actions.Count(a => a.Kind is PipelineActionKind.SendActivation or PipelineActionKind.SendGradient)));
        }

        [Theory]
        [InlineData(2, 8)]
        [InlineData(4, 8)]
        [InlineData(4, 16)]
        public void OneForwardOneBackwardHoldsAtMostPMicrobatchesAndGPipeHoldsM(int p, int m)
        {
            static int Peak(IReadOnlyList<PipelineAction> actions)
            {
                int live = 0, peak = 0;
                foreach (var a in actions)
                {
                    if (a.Kind == PipelineActionKind.Forward) peak = System.Math.Max(peak, ++live);
                    if (a.Kind == PipelineActionKind.Backward) live--;
                }
                return peak;
            }
            var gpipe = PipelineSchedule.GPipe(p, m);
            var oneF = PipelineSchedule.OneForwardOneBackward(p, m);
            for (int r = 0; r < p; r++)
            {
                Assert.Equal(m, Peak(gpipe.Ranks[r]));
                Assert.Equal(p - r, Peak(oneF.Ranks[r]));
            }
        }

        [Theory]
        [InlineData("gpipe", 2, 4, 1)]
        [InlineData("gpipe", 4, 8, 1)]
        [InlineData("gpipe", 4, 16, 1)]
        [InlineData("1f1b", 2, 4, 1)]
        [InlineData("1f1b", 4, 8, 1)]
        [InlineData("1f1b", 4, 16, 1)]
        [InlineData("interleaved", 2, 4, 2)]
        [InlineData("interleaved", 2, 8, 2)]
        [InlineData("interleaved", 4, 4, 2)]
        [InlineData("interleaved", 4, 8, 2)]
        [InlineData("interleaved", 4, 16, 2)]
        [InlineData("interleaved", 4, 8, 4)]
        public void OnIdealHardwareTheBubbleIsTheTextbookFraction(string name, int p, int m, int v)
        {
            // Stage cost 1 forward, 2 backward per chunk; the textbook: (p-1)/(v m + p-1) of the step is idle.
            var trace = PipelineScheduleSimulator.Simulate(PipelineSchedule.Create(name, p, m, v), forward: 1, backward: 2);
            double expectedSpan = 3.0 * (v * m + p - 1);
            Assert.Equal(expectedSpan, trace.Span, 9);
            Assert.Equal((p - 1.0) / (v * m + p - 1.0), trace.BubbleFraction, 9);
        }

        [Fact]
        public void ADroppedReceiveIsRejectedNamingTheSendAndTheWaitingRank()
        {
            var schedule = PipelineSchedule.OneForwardOneBackward(2, 4);
            var rank1 = schedule.Ranks[1].ToList();
            int dropped = rank1.FindIndex(a => a.Kind == PipelineActionKind.ReceiveActivation && a.Microbatch == 2);
            rank1.RemoveAt(dropped);
            var broken = new PipelineSchedule("broken", 2, 4, 1, new[] { schedule.Ranks[0], rank1 });
            var error = Assert.Throws<InvalidPipelineScheduleException>(() => PipelineScheduleValidator.Validate(broken));
            Assert.Contains("rank 1", error.Message);
            Assert.Contains("(F2(s1)) runs before receiving its input activation (micro-batch 2, stage 1)", error.Message);
        }

        [Fact]
        public void ReceivesInTheWrongOrderAreRejectedNamingBothActions()
        {
            var schedule = PipelineSchedule.GPipe(2, 3);
            var rank1 = schedule.Ranks[1].ToList();
            // Swap the receives of micro-batches 0 and 1 (each still before its forward): rank 1 takes micro-batch 0's message as 1's.
            int first = rank1.FindIndex(a => a.Kind == PipelineActionKind.ReceiveActivation && a.Microbatch == 0);
            int second = rank1.FindIndex(a => a.Kind == PipelineActionKind.ReceiveActivation && a.Microbatch == 1);
            (rank1[first], rank1[second]) = (rank1[second], rank1[first]);
            var broken = new PipelineSchedule("swapped", 2, 3, 1, new[] { schedule.Ranks[0], rank1 });
            var error = Assert.Throws<InvalidPipelineScheduleException>(() => PipelineScheduleValidator.Validate(broken));
            Assert.Contains("rank 1 action #0 (recv-act 1(s1)←r0) would get the message of rank 0 action #1 (send-act 0(s0)→r1)", error.Message);
        }

        [Fact]
        public void ACycleOfReceivesIsRejectedNamingEveryWaitingRank()
        {
            var schedule = PipelineSchedule.OneForwardOneBackward(2, 2);
            // Rank 0 waits for the gradient of micro-batch 0 before sending any activation: both ranks wait forever.
            var rank0 = schedule.Ranks[0].ToList();
            int receive = rank0.FindIndex(a => a.Kind == PipelineActionKind.ReceiveGradient && a.Microbatch == 0);
            var moved = rank0[receive];
            rank0.RemoveAt(receive);
            rank0.Insert(0, moved);
            var broken = new PipelineSchedule("cycle", 2, 2, 1, new[] { rank0, schedule.Ranks[1] });
            var error = Assert.Throws<InvalidPipelineScheduleException>(() => PipelineScheduleValidator.Validate(broken));
            Assert.Contains("wait for each other forever", error.Message);
            Assert.Contains("rank 0 at action #0 (recv-grad 0(s0)←r1)", error.Message);
            Assert.Contains("rank 1 at action #0 (recv-act 0(s1)←r0)", error.Message);
        }

        [Fact]
        public void AShapeMismatchBetweenSendAndReceiveIsRejected()
        {
            var schedule = PipelineSchedule.GPipe(2, 1, shape: new long[] { 4, 8 });
            var rank1 = schedule.Ranks[1].Select(a => a.Kind == PipelineActionKind.ReceiveActivation ? a with { Shape = new long[] { 4, 9 } } : a).ToList();
            var broken = new PipelineSchedule("shape", 2, 1, 1, new[] { schedule.Ranks[0], rank1 });
            var error = Assert.Throws<InvalidPipelineScheduleException>(() => PipelineScheduleValidator.Validate(broken));
            Assert.Contains("[4, 9]", error.Message);
            Assert.Contains("[4, 8]", error.Message);
        }

        [Fact]
        public void AMissingBackwardIsRejected()
        {
            var schedule = PipelineSchedule.GPipe(2, 2);
            var rank0 = schedule.Ranks[0].Where(a => !(a.Kind == PipelineActionKind.Backward && a.Microbatch == 1)).ToList();
            var broken = new PipelineSchedule("missing", 2, 2, 1, new[] { rank0, schedule.Ranks[1] });
            var error = Assert.Throws<InvalidPipelineScheduleException>(() => PipelineScheduleValidator.Validate(broken));
            Assert.Contains("rank 0 runs Backward of micro-batch 1 on stage 0 0 times (expected once)", error.Message);
        }
    }
}
