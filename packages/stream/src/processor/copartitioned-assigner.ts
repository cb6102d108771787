// Co-partitioned assignment (as Kafka Streams does for joined topics): partition N of every
// subscribed topic goes to the same member. The detector needs it because pos.transactions.v1-N,
// pos.heartbeats.v1-N and the changelog partition N all belong to one rule-engine task, written
// under one transactional id; kafkajs's round-robin assigner would split them across members.
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export const CoPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'TillwatchCoPartitioned',
  version: 0,
  async assign({ members, topics }) {
    const memberIds = members.map((m) => m.memberId).sort();
    const partitionsByTopic = new Map<string, number[]>();
    const numbers = new Set<number>();
    for (const topic of topics) {
      const ps = cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId).sort((a, b) => a - b);
      partitionsByTopic.set(topic, ps);
      for (const p of ps) numbers.add(p);
    }
    const byMember = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]));
    [...numbers].sort((a, b) => a - b).forEach((p, i) => {
      const assignment = byMember.get(memberIds[i % memberIds.length]!)!;
      for (const [topic, ps] of partitionsByTopic) {
        if (ps.includes(p)) (assignment[topic] ??= []).push(p);
      }
    });
    return memberIds.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: byMember.get(memberId)!, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: 'TillwatchCoPartitioned', metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
  },
});
