#!/usr/bin/env bash
# Moves the match jobs in the dead-letter queue back to the match queue (an SQS message move
# task), once the cause of their failures is fixed. Jobs are idempotent: a job whose contact was
# decided meanwhile changes nothing.
#
#   infra/scripts/replay-dlq.sh [STACK_NAME]     the stack's queues, from its outputs
#   DLQ_URL=… QUEUE_URL=… infra/scripts/replay-dlq.sh   explicit queues (any endpoint the CLI reaches)
#
# Needs the AWS CLI v2 with credentials for the stack's account and region. Waits until the
# move task ends and prints how many messages moved.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
stack="${1:-$(awk -F'"' '/^stack_name/ {print $2; exit}' samconfig.toml)}"

output() {
    aws cloudformation describe-stacks --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
attribute() { # queue url, attribute name
    aws sqs get-queue-attributes --queue-url "$1" --attribute-names "$2" \
        --query "Attributes.$2" --output text
}

dlq_url="${DLQ_URL:-$(output MatchDeadLetterQueueUrl)}"
queue_url="${QUEUE_URL:-$(output MatchQueueUrl)}"
dlq_arn="$(attribute "$dlq_url" QueueArn)"
queue_arn="$(attribute "$queue_url" QueueArn)"
waiting="$(attribute "$dlq_url" ApproximateNumberOfMessages)"
echo "about $waiting message(s) in $dlq_url; moving them to $queue_url"
if [[ $waiting == 0 ]]; then
    exit 0
fi

task="$(aws sqs start-message-move-task --source-arn "$dlq_arn" --destination-arn "$queue_arn" \
    --query TaskHandle --output text)"
echo "move task $task started"
for _ in $(seq 1 120); do
    read -r status moved < <(aws sqs list-message-move-tasks --source-arn "$dlq_arn" --max-results 1 \
        --query 'Results[0].[Status, ApproximateNumberOfMessagesMoved]' --output text)
    case "$status" in
        COMPLETED)
            echo "moved $moved message(s)"
            exit 0
            ;;
        FAILED | CANCELLED)
            echo "the move task ended $status after $moved message(s)" >&2
            exit 1
            ;;
    esac
    sleep 5
done
echo "the move task is still running after 10 minutes (moved $moved so far); it goes on" >&2
