//! CopilotKit 1.x GraphQL: which operation a document executes, read with a real GraphQL parser
//! (`graphql-parser`), never from the client's `operationName`. A document is free only when its single
//! operation is a query whose top-level fields are all non-generating (`availableAgents`,
//! `loadAgentState`, `__typename`); a document that does not parse, has several operations (the one run
//! would be chosen by `operationName`) or nests deeper than [`MAX_DEPTH`] is refused.

use graphql_parser::query::{parse_query, Definition, OperationDefinition, Selection};

use super::body::Refusal;

/// Top-level query fields that never reach a model.
const FREE_FIELDS: [&str; 3] = ["availableAgents", "loadAgentState", "__typename"];
/// Deepest bracket nesting read; the parser recurses, so a deeper document is refused before it is parsed.
const MAX_DEPTH: usize = 64;

/// What a GraphQL document does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A query of non-generating fields only.
    Free,
    /// Anything else (a mutation such as `generateCopilotResponse`, a subscription, other fields).
    Generating,
}

/// Reads `query`.
pub fn operation(query: &str) -> Result<Operation, Refusal> {
    let mut depth = 0usize;
    for c in query.chars() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Err(Refusal::bad("The GraphQL document nests too deeply."));
        }
    }
    let doc = parse_query::<&str>(query)
        .map_err(|_| Refusal::bad("The GraphQL document does not parse."))?;
    let mut ops = doc.definitions.iter().filter_map(|d| match d {
        Definition::Operation(op) => Some(op),
        Definition::Fragment(_) => None,
    });
    let (Some(op), None) = (ops.next(), ops.next()) else {
        return Err(Refusal::bad(
            "The GraphQL document must hold exactly one operation (operationName is not used to pick one).",
        ));
    };
    let selections = match op {
        OperationDefinition::SelectionSet(s) => &s.items,
        OperationDefinition::Query(q) => &q.selection_set.items,
        OperationDefinition::Mutation(_) | OperationDefinition::Subscription(_) => {
            return Ok(Operation::Generating)
        }
    };
    let free = !selections.is_empty()
        && selections.iter().all(|s| match s {
            Selection::Field(f) => FREE_FIELDS.contains(&f.name),
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
        });
    Ok(if free {
        Operation::Free
    } else {
        Operation::Generating
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_runs_is_read_from_the_document() {
        for (q, want) in [
            ("query availableAgents { availableAgents { agents { id name } } }", Operation::Free),
            ("{ availableAgents { agents { id } } __typename }", Operation::Free),
            (
                "query loadAgentState($data: LoadAgentStateInput!) { loadAgentState(data: $data) { threadId state } }",
                Operation::Free,
            ),
            (
                "mutation generateCopilotResponse($data: GenerateCopilotResponseInput!) { generateCopilotResponse(data: $data) { threadId } }",
                Operation::Generating,
            ),
            ("mutation { generateCopilotResponse(data: {messages: [{textMessage: {content: \"hi\"}}]}) { threadId } }", Operation::Generating),
            ("mutation availableAgents { generateCopilotResponse(data: {}) { threadId } }", Operation::Generating),
            ("query availableAgents { generateCopilotResponse { threadId } }", Operation::Generating),
            ("query { ...F } fragment F on Query { availableAgents { agents { id } } }", Operation::Generating),
            ("query { ... on Query { availableAgents { agents { id } } } }", Operation::Generating),
            ("subscription { events }", Operation::Generating),
        ] {
            assert_eq!(operation(q).unwrap(), want, "{q}");
        }
    }

    #[test]
    fn undeterminable_documents_are_refused() {
        let deep = format!("query {{ {}x{} }}", "a { ".repeat(100), " }".repeat(100));
        for q in [
            "",
            "mutation {",
            "query a { availableAgents { agents { id } } } mutation b { generateCopilotResponse(data: {}) { threadId } }",
            "fragment F on Query { availableAgents { agents { id } } }",
            &deep,
        ] {
            assert_eq!(operation(q).unwrap_err().status, 400, "{q}");
        }
    }
}
